/**
 * The page's one place for errors: a role="alert" area under the header. Every failed request ends up
 * here in words (the API's error.message), so a failure is never a blank or silent page. A message has a
 * key: a repeated failure (a poll every few seconds) replaces its message instead of stacking copies, and
 * the next success clears it.
 */
import { ApiError } from './api.js';
import { byId, el } from './dom.js';

function area(): HTMLElement {
  return byId('alerts');
}

/** The words for an error: the API's message, with what the page was doing in front. */
export function errorText(err: unknown, doing?: string): string {
  const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  return doing ? `${doing}: ${message}` : message;
}

/** The key of the one message every request that found no server shares (cleared by the next answer). */
export const UNREACHABLE = 'unreachable';

export function showError(err: unknown, doing?: string, key = doing ?? 'general'): void {
  if (err instanceof ApiError && err.status === 0) return showUnreachable(err);
  clearError(key);
  const dismiss = el('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss this message' }, 'Dismiss');
  const message = el('p', { class: 'alert', 'data-key': key }, el('span', {}, errorText(err, doing)), ' ', dismiss);
  dismiss.addEventListener('click', () => message.remove());
  area().append(message);
}

export function clearError(key: string): void {
  for (const node of area().querySelectorAll<HTMLElement>('.alert')) {
    if (node.dataset.key === key) node.remove();
  }
}

/** One message however many requests failed: what they were doing matters less than that nothing answers. */
function showUnreachable(err: ApiError): void {
  if (area().querySelector(`.alert[data-key="${UNREACHABLE}"]`)) return;
  area().append(el('p', { class: 'alert', 'data-key': UNREACHABLE }, err.message));
}
