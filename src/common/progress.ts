/**
 * Progress for long work: a one-line bar with rate and ETA on a terminal,
 * plain lines (at most one every `plainIntervalMs`) when stderr is not a TTY,
 * nothing when quiet. Progress goes to stderr so stdout stays the output.
 */
export interface ProgressOptions {
  label: string;
  /** Total units of work, when known; without it no bar or ETA is drawn. */
  total?: number;
  /** Unit name for the rate, e.g. 'MB', 'tok', 'rows'. */
  unit?: string;
  /** Divide counts by this for display (1e6 for bytes shown as MB). */
  scale?: number;
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  plainIntervalMs?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`;
  if (perSecond >= 1e4) return `${(perSecond / 1e3).toFixed(1)}k`;
  if (perSecond >= 100) return perSecond.toFixed(0);
  return perSecond.toFixed(2);
}

export class Progress {
  private readonly opts: Required<Omit<ProgressOptions, 'total'>> & { total?: number };
  private readonly start = Date.now();
  private lastDraw = 0;
  private lastPlain = 0;
  private done = 0;
  private readonly tty: boolean;

  constructor(opts: ProgressOptions) {
    this.opts = { unit: '', scale: 1, quiet: false, stream: process.stderr, plainIntervalMs: 5000, ...opts };
    this.tty = Boolean(this.opts.stream.isTTY) && !process.env.CI;
  }

  /** Set the absolute amount done; `fields` are shown after the rate (loss, lr, ...). */
  update(done: number, fields: Record<string, string | number> = {}): void {
    this.done = done;
    if (this.opts.quiet) return;
    const now = Date.now();
    if (this.tty) {
      if (now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.opts.stream.write(`\r${this.line(fields, 30)}\x1b[K`);
    } else if (now - this.lastPlain >= this.opts.plainIntervalMs) {
      this.lastPlain = now;
      this.opts.stream.write(`${this.line(fields, 0)}\n`);
    }
  }

  /** Print an ordinary line without breaking the bar. */
  log(message: string): void {
    if (this.opts.quiet) return;
    this.opts.stream.write(this.tty ? `\r\x1b[K${message}\n` : `${message}\n`);
    this.lastDraw = 0;
  }

  finish(fields: Record<string, string | number> = {}): void {
    if (this.opts.quiet) return;
    const line = this.line(fields, this.tty ? 30 : 0);
    this.opts.stream.write(this.tty ? `\r${line}\x1b[K\n` : `${line}\n`);
  }

  private line(fields: Record<string, string | number>, barWidth: number): string {
    const { label, total, unit, scale } = this.opts;
    const elapsed = (Date.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / scale / elapsed : 0;
    const parts = [label];
    if (total && total > 0) {
      const frac = Math.min(1, this.done / total);
      if (barWidth > 0) {
        const filled = Math.round(frac * barWidth);
        parts.push(`[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`);
      }
      parts.push(`${(frac * 100).toFixed(frac < 0.1 ? 1 : 0)}%`);
    }
    parts.push(`${formatRate(rate)} ${unit}/s`.trim());
    for (const [k, v] of Object.entries(fields)) parts.push(`${k} ${v}`);
    if (total && total > 0 && this.done > 0 && this.done < total) {
      parts.push(`ETA ${formatDuration((elapsed * (total - this.done)) / this.done)}`);
    } else {
      parts.push(`elapsed ${formatDuration(elapsed)}`);
    }
    return parts.join('  ');
  }
}
