/**
 * The API key form: shown when a request gets a 401 (the server runs with --api-key). api.ts shows it once
 * however many requests are waiting, keeps the key in this tab's sessionStorage, and retries them.
 */
import { ApiError } from './api.js';
import { byId } from './dom.js';

export function askForKey(refused: boolean): Promise<string> {
  const dialog = byId<HTMLDialogElement>('key-dialog');
  const form = byId<HTMLFormElement>('key-form');
  const input = byId<HTMLInputElement>('key-input');
  byId('key-message').textContent = refused
    ? 'The server refused that key. Check it and try again.'
    : 'This server asks for an API key (it was started with --api-key). The page keeps it in this tab only.';
  input.value = '';
  dialog.showModal();
  input.focus();
  return new Promise((resolve, reject) => {
    const done = new AbortController();
    form.addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return input.focus();
        done.abort();
        dialog.close();
        resolve(key);
      },
      { signal: done.signal },
    );
    // Escape or the Cancel button: the page cannot use the API, and says so.
    const giveUp = (event: Event): void => {
      event.preventDefault();
      done.abort();
      dialog.close();
      reject(new ApiError('No API key given: the page cannot use this server without it. Reload the page to enter it.', 401));
    };
    dialog.addEventListener('cancel', giveUp, { signal: done.signal });
    byId('key-cancel').addEventListener('click', giveUp, { signal: done.signal });
  });
}
