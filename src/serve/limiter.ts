/**
 * At most `maxConcurrent` generations at once; more wait, first come first served, in a queue of at most
 * `maxQueue`; past it a request is refused at once with 429 and a Retry-After estimated from how long
 * generations have been taking. A waiter whose signal aborts (its client left, the server closes) leaves the
 * queue.
 */
import { ApiError } from './errors.js';

interface Waiter {
  resolve(release: () => void): void;
  reject(reason: unknown): void;
  detach(): void;
}

export class Limiter {
  private running = 0;
  private readonly queue: Waiter[] = [];
  /** Moving average of a generation's seconds (for Retry-After). */
  private averageSeconds = 1;

  constructor(
    readonly maxConcurrent: number,
    readonly maxQueue: number,
  ) {
    if (!(Number.isInteger(maxConcurrent) && maxConcurrent >= 1)) throw new Error(`Limiter: maxConcurrent must be a whole number >= 1, got ${maxConcurrent}`);
  }

  /** Generations running and waiting now. */
  get stats(): { running: number; queued: number } {
    return { running: this.running, queued: this.queue.length };
  }

  /** Wait for a slot; the function returned gives it back (once). 429 when the queue is full. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.running < this.maxConcurrent) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.maxQueue) {
      const seconds = Math.max(1, Math.ceil((this.averageSeconds * (this.queue.length + 1)) / this.maxConcurrent));
      return Promise.reject(
        new ApiError(
          429,
          `the server is busy: ${this.running} generations running and ${this.queue.length} waiting (--max-concurrent ${this.maxConcurrent}); retry after ${seconds} s`,
          null,
          'rate_limit_error',
          'rate_limit_exceeded',
          { 'retry-after': String(seconds) },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = { resolve, reject, detach: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private releaser(): () => void {
    const started = performance.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.averageSeconds = 0.8 * this.averageSeconds + 0.2 * ((performance.now() - started) / 1000);
      const next = this.queue.shift();
      if (next) {
        next.detach();
        next.resolve(this.releaser());
      } else {
        this.running--;
      }
    };
  }
}
