/**
 * Following one job's event stream (GET /v1/jobs/:id/events, read with fetch so the key is sent). The
 * server replays the job's whole history first, then sends events live, and ends the stream when the
 * job ends. A stream cut short (the network, a server restart) is opened again after a pause, and since
 * that replays the history, the listener is told to start over first.
 */
import { ApiError, apiFetch, isAbort, readEvents } from './api.js';
import { clearError, showError } from './alerts.js';
import { sleep } from './dom.js';
import { ENDED_STATES, type MetricsRecord, type StateEvent } from './types.js';

export interface JobListener {
  /** Drop what was shown: the history is about to be replayed. */
  reset(): void;
  state(event: StateEvent): void;
  metrics(record: MetricsRecord): void;
}

const RETRY_MS = 3000;

/** Follow job `id` until it ends or `signal` aborts. */
export async function followJob(id: string, listener: JobListener, signal: AbortSignal): Promise<void> {
  for (;;) {
    listener.reset();
    let ended = false;
    try {
      const response = await apiFetch(`/v1/jobs/${encodeURIComponent(id)}/events`, { signal, headers: { accept: 'text/event-stream' } });
      clearError('events');
      for await (const event of readEvents(response.body!)) {
        const data = JSON.parse(event.data) as unknown;
        if (event.event === 'metrics') listener.metrics(data as MetricsRecord);
        else if (event.event === 'state') {
          listener.state(data as StateEvent);
          ended = ENDED_STATES.has((data as StateEvent).state);
        }
      }
      if (ended) return;
    } catch (err) {
      if (isAbort(err) || signal.aborted) return;
      showError(err, `Following job ${id}`, 'events');
      if (err instanceof ApiError && err.status === 404) return; // no such job: asking again will not help
    }
    await sleep(RETRY_MS);
    if (signal.aborted) return;
  }
}
