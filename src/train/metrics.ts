/**
 * metrics.jsonl: one JSON object per line, `type` "start", "train" or "eval",
 * each with its `step`. A resumed run first drops what the interrupted run
 * logged after the checkpoint it resumes from, so the file reads as one run.
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from '../common/atomic.js';
import { outputError } from '../common/errors.js';

export type MetricsRecord = { type: 'start' | 'train' | 'eval' | 'stop'; step: number } & Record<string, string | number | boolean | null>;

export class MetricsLog {
  private fd: number;

  /** Start the log at `file`; with `keepThroughStep`, keep the records up to that step (resume). */
  constructor(
    readonly file: string,
    keepThroughStep: number | null,
  ) {
    if (keepThroughStep === null || !fs.existsSync(file)) {
      writeFileAtomic(file, '');
    } else {
      const kept = readMetrics(file).filter((r) => r.step <= keepThroughStep);
      writeFileAtomic(file, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    }
    this.fd = fs.openSync(file, 'a');
  }

  write(record: MetricsRecord): void {
    try {
      fs.writeSync(this.fd, `${JSON.stringify(record)}\n`);
    } catch (err) {
      throw outputError(err, this.file); // a full disk names the log
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Records of a metrics.jsonl file (lines that do not parse are skipped). */
export function readMetrics(file: string): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as MetricsRecord);
    } catch {
      // cut short by a kill
    }
  }
  return out;
}
