/**
 * Every request the page makes to gptmed-serve goes through here: the API key (when the server has one)
 * is added, a 401 asks the user for the key once and retries, and a failure becomes an ApiError whose
 * message is the server's own `error.message` (or a sentence saying the server is unreachable).
 * Also: a parser for server-sent events read through fetch (EventSource cannot send Authorization),
 * and downloads that carry the key (fetch -> blob -> object URL).
 */

export class ApiError extends Error {
  constructor(
    message: string,
    /** The HTTP status; 0 when no answer came (network failure). */
    readonly status: number,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const KEY_STORAGE = 'gptmed.apiKey';

/** Shows the key form; resolves with the key typed, rejects if the user gives up. */
export type KeyPrompt = (refused: boolean) => Promise<string>;

let askForKey: KeyPrompt | null = null;
/** Told whenever the server answers (anything): the page then drops its "unreachable" message. */
let onAnswer: (() => void) | null = null;
/** The key form being shown, shared by every request that got a 401 meanwhile (one form, not one per request). */
let keyBeingAsked: Promise<string> | null = null;

export function setKeyPrompt(prompt: KeyPrompt): void {
  askForKey = prompt;
}

export function setAnswerListener(listener: () => void): void {
  onAnswer = listener;
}

function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

/** Set when the user closed the key form without a key: the page stops asking (a reload asks again). */
let keyDeclined: ApiError | null = null;

function newKey(refused: boolean): Promise<string> {
  if (!askForKey) return Promise.reject(new ApiError('This server needs an API key.', 401));
  if (keyDeclined) return Promise.reject(keyDeclined);
  keyBeingAsked ??= askForKey(refused)
    .then((key) => {
      sessionStorage.setItem(KEY_STORAGE, key);
      return key;
    })
    .catch((err: unknown) => {
      keyDeclined = err instanceof ApiError ? err : new ApiError(String(err), 401);
      throw keyDeclined;
    })
    .finally(() => {
      keyBeingAsked = null;
    });
  return keyBeingAsked;
}

const unreachable = (): ApiError => new ApiError('The server is unreachable: is gptmed-serve still running? The page keeps trying.', 0);

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

/** The server's `{"error": {"message"}}` as an ApiError; any other body gives the status line. */
async function errorFrom(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`.trim();
  let param: string | null = null;
  try {
    const body = (await response.json()) as { error?: { message?: string; param?: string | null } };
    if (body.error?.message) message = body.error.message;
    param = body.error?.param ?? null;
  } catch {
    // Not JSON (a proxy's page, say): the status line will do.
  }
  return new ApiError(message, response.status, param);
}

/**
 * fetch() a server path with the key. Resolves with an OK response; throws ApiError otherwise, or the
 * AbortError when `init.signal` aborts. A body must be re-sendable (string, FormData, Blob): a 401 retries.
 */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  for (;;) {
    const key = storedKey();
    const headers = new Headers(init.headers);
    if (key) headers.set('authorization', `Bearer ${key}`);
    let response: Response;
    try {
      response = await fetch(path, { ...init, headers });
    } catch (err) {
      if (isAbort(err)) throw err;
      throw unreachable();
    }
    onAnswer?.();
    if (response.status === 401 && askForKey) {
      // Another request may already have got a new key since this one was sent: then just retry with it.
      if (storedKey() === key) await newKey(key !== null);
      continue;
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await (await apiFetch(path, { signal })).json()) as T;
}

export async function postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const response = await apiFetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
  return (await response.json()) as T;
}

export async function postForm<T>(path: string, form: FormData, signal?: AbortSignal): Promise<T> {
  return (await (await apiFetch(path, { method: 'POST', body: form, signal })).json()) as T;
}

/** POST with no body (cancel, resume). */
export async function postEmpty<T>(path: string): Promise<T> {
  return (await (await apiFetch(path, { method: 'POST' })).json()) as T;
}

export interface SseEvent {
  event: string;
  data: string;
}

/** One event block (the lines before a blank line); null for a comment-only block (keepalives). */
function parseEventBlock(block: string): SseEvent | null {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length > 0 ? { event, data: data.join('\n') } : null;
}

/** The events of a text/event-stream body as they arrive. Leaving the loop early closes the stream. */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw isAbort(err) ? err : unreachable(); // the connection was cut mid-stream
      }
      const { value, done } = chunk;
      if (done) return;
      // Normalise line ends; a trailing \r waits for the next chunk, which may start with its \n.
      buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n|\r(?!$)/g, '\n');
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = parseEventBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** The file name a response says to save as (Content-Disposition), else `fallback`. */
function downloadName(response: Response, fallback: string): string {
  const disposition = response.headers.get('content-disposition') ?? '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (star) return decodeURIComponent(star[1]);
  return /filename="?([^";]+)"?/i.exec(disposition)?.[1] ?? fallback;
}

/** Download a server file with the key: a plain link could not send the Authorization header. */
export async function download(path: string, fallbackName: string): Promise<void> {
  const response = await apiFetch(path);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = downloadName(response, fallbackName);
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has taken the blob once the click is handled; free it a little later.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
