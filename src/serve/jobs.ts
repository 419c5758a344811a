/**
 * Training jobs: each one runs the stages a user would run (gptmed-convert, gptmed-train-tokenizer,
 * gptmed-tokenize, gptmed-train) as child processes of our own binaries, in a run directory under
 * --runs-dir whose name is the job's id and the model id it is served as:
 *
 *   <runs-dir>/<id>/job.json        the job (state, stage, config, progress), written atomically
 *                   events.jsonl    every event the job's SSE stream sends, in order (history for late subscribers)
 *                   job.log         the stages' command lines, stdout and stderr
 *                   upload/<file>   the uploaded data file
 *                   data/data.qa.txt, tokenizer/tokenizer.{model,vocab}, shards/{train,val}.npy + meta.json
 *                   latest, best, step-NNNNNN/, metrics.jsonl, tensorboard/   gptmed-train's run (--checkpoint-dir <id>)
 *
 * One job runs at a time; the others wait in order. A job's child crashing fails the job, never the server.
 * Cancel is Ctrl-C (SIGINT: gptmed-train saves a checkpoint and stops); closing the server does the same and
 * leaves the job `interrupted`, to resume after a restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic.js';
import { packageRoot } from '../common/paths.js';
import { readMetrics, type MetricsRecord } from '../train/metrics.js';
import { ApiError } from './errors.js';
import { STAGES, stageFlags, type JobConfig, type JobKey, type Stage } from './job-config.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
export const ENDED: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);
const RESUMABLE: ReadonlySet<JobState> = new Set(['cancelled', 'interrupted']);

export interface JobProgress {
  step: number | null;
  totalSteps: number | null;
  trainLoss: number | null;
  valLoss: number | null;
  tokensPerSec: number | null;
  /** Seconds left at the pace since this train process started; null before two steps, 0 once done. */
  etaSeconds: number | null;
}

/** job.json. */
export interface JobRecord {
  version: 1;
  id: string;
  name: string | null;
  state: JobState;
  /** The stage running, or the last one that ran (null before the first starts). */
  stage: Stage | null;
  completedStages: Stage[];
  config: JobConfig;
  upload: { file: string; filename: string; bytes: number; qaText: boolean };
  /** A fine-tuning job's starting point (config.initFrom resolved when the job was made); absent otherwise. */
  initFrom?: JobBase;
  createdAt: string;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The failing stage's `gptmed-<stage>: error: ...` line. */
  error: string | null;
  progress: JobProgress;
  /** The child running now (for the record: a server killed with SIGKILL leaves it running). */
  pid: number | null;
}

export interface JobEvent {
  id: number;
  event: 'state' | 'metrics';
  data: object;
}

export const JOB_FILE = 'job.json';
const EVENTS_FILE = 'events.jsonl';
const LOG_FILE = 'job.log';
const UPLOAD_PREFIX = '.upload-';
const DATA_FILE = 'data/data.qa.txt';
const TOKENIZER_PREFIX = 'tokenizer/tokenizer';
const SHARDS_DIR = 'shards';

/** How long cancel waits for the child to save and exit before answering; close waits longer, then kills. */
const CANCEL_WAIT_MS = 15_000;
const CLOSE_WAIT_MS = 60_000;
const PRE_CLOSE_WAIT_MS = 7_000;
const METRICS_POLL_MS = 200;
const PROGRESS_SAVE_MS = 5_000;

const emptyProgress = (): JobProgress => ({ step: null, totalSteps: null, trainLoss: null, valLoss: null, tokensPerSec: null, etaSeconds: null });
const now = (): string => new Date().toISOString();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** A job in memory: its record and what runs it. */
class Job {
  child: ChildProcess | null = null;
  stopRequest: 'cancel' | 'shutdown' | null = null;
  /** The run loop, while the job runs. */
  done: Promise<void> | null = null;
  seq = 0;
  readonly events = new EventEmitter();
  /** Where the ETA is measured from: the first step this train process logged. */
  etaBase: { step: number; t: number } | null = null;
  savedAt = 0;

  constructor(
    public record: JobRecord,
    readonly dir: string,
  ) {
    this.events.setMaxListeners(0);
  }
}

/** The public view of a job (GET /v1/jobs/:id): the record's progress flattened, without its paths and pid. */
export type JobView = Pick<JobRecord, 'id' | 'name' | 'state' | 'stage' | 'completedStages' | 'error' | 'config' | 'createdAt' | 'startedAt' | 'finishedAt'> &
  JobProgress & { object: 'training.job'; model: string; upload: { filename: string; bytes: number } };

export function jobView(job: { record: JobRecord }): JobView {
  const r = job.record;
  return {
    id: r.id,
    object: 'training.job',
    name: r.name,
    model: r.id,
    state: r.state,
    stage: r.stage,
    completedStages: r.completedStages,
    step: r.progress.step,
    totalSteps: r.progress.totalSteps,
    trainLoss: r.progress.trainLoss,
    valLoss: r.progress.valLoss,
    tokensPerSec: r.progress.tokensPerSec,
    etaSeconds: r.progress.etaSeconds,
    error: r.error,
    config: r.config,
    upload: { filename: r.upload.filename, bytes: r.upload.bytes },
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
  };
}

/** Fold one metrics.jsonl record into the progress. */
function applyRecord(job: Job, rec: MetricsRecord, wall: number | null): void {
  const p = job.record.progress;
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  if (typeof rec.step === 'number') p.step = rec.step;
  if (rec.type === 'start') {
    p.totalSteps = num(rec.totalSteps) ?? p.totalSteps;
    job.etaBase = wall === null ? null : { step: rec.step, t: wall };
  } else if (rec.type === 'train') {
    p.trainLoss = num(rec.loss);
    p.tokensPerSec = num(rec.tokensPerSec);
  } else if (rec.type === 'eval') {
    p.valLoss = num(rec.valLoss);
  }
  if (rec.type === 'stop' || (p.totalSteps !== null && p.step !== null && p.step >= p.totalSteps)) {
    p.etaSeconds = 0;
  } else if (wall !== null && job.etaBase && p.step !== null && p.totalSteps !== null && p.step > job.etaBase.step) {
    const perStep = (wall - job.etaBase.t) / 1000 / (p.step - job.etaBase.step);
    p.etaSeconds = Math.round(perStep * (p.totalSteps - p.step));
  }
}

/**
 * Follows metrics.jsonl as a gptmed-train process writes it. A resumed run first replaces the file with the
 * records up to its checkpoint (those were sent already): the tail waits for the new file (another inode)
 * and skips that many records.
 */
class MetricsTail {
  private ino: number | null = null;
  private offset = 0;
  private partial = '';

  constructor(
    private readonly file: string,
    private readonly oldIno: number | null,
    private skip: number,
    private readonly onRecord: (rec: MetricsRecord) => void,
  ) {}

  poll(): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      return;
    }
    if (this.ino === null) {
      if (st.ino === this.oldIno) return; // the previous run's file, not yet replaced
      this.ino = st.ino;
    } else if (st.ino !== this.ino) {
      return; // replaced by someone else: keep what was read
    }
    if (st.size <= this.offset) return;
    const fd = fs.openSync(this.file, 'r');
    let text: string;
    try {
      const buf = Buffer.alloc(st.size - this.offset);
      const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      text = this.partial + buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      let rec: MetricsRecord;
      try {
        rec = JSON.parse(line) as MetricsRecord;
      } catch {
        continue;
      }
      if (this.skip > 0) {
        this.skip--;
        continue;
      }
      this.onRecord(rec);
    }
  }
}

const inode = (file: string): number | null => {
  try {
    return fs.statSync(file).ino;
  } catch {
    return null;
  }
};

/** The step of the run's `latest` checkpoint, or null. */
function latestStep(runDir: string): number | null {
  try {
    const m = /^step-(\d+)$/.exec(fs.readFileSync(path.join(runDir, 'latest'), 'utf8').trim());
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The last `gptmed-<stage>: error: ...` line the stage wrote to the log since `from`. */
function errorLineIn(logFile: string, from: number, stage: Stage): string | null {
  let text: string;
  try {
    const fd = fs.openSync(logFile, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(from, size - 256 * 1024);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  const prefix = `gptmed-${stage}: error: `;
  const lines = text.split('\n').filter((l) => l.startsWith(prefix));
  return lines.length > 0 ? lines[lines.length - 1].trim() : null;
}

/** A client's file name as a plain file name under our control (its extension kept: it tells the format). */
export const safeFilename = (name: string): string => {
  const base = path.basename(name.replace(/\\/g, '/')).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._]+/, '');
  return base.slice(-100) || 'data';
};

/** Whether the file is Q&A text already ("Q:" first, after a byte order mark and blank lines). */
export function isQaText(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return /^(\uFEFF)?\s*Q:/.test(buf.subarray(0, n).toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

function newId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `job-${t}-${randomBytes(3).toString('hex')}`;
}

export interface NewJob {
  /** The uploaded file, written by `uploadPath()`; moved into the job's directory. */
  upload: string;
  filename: string;
  bytes: number;
  config: JobConfig;
  initFrom?: JobBase;
}

/** The model a fine-tuning job starts from: its id, its step directory and its tokenizer (absolute paths). */
export interface JobBase {
  model: string;
  checkpoint: string;
  tokenizer: string;
}

export class JobManager {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running: Job | null = null;
  private closing = false;

  private constructor(
    readonly runsDir: string,
    private readonly keys: Map<string, JobKey>,
    private readonly log: (line: string) => void,
  ) {}

  /** The jobs on disk under runsDir: a job that was running is `interrupted`; queued ones wait again, in order. */
  static open(runsDir: string, keys: Map<string, JobKey>, log: (line: string) => void = () => {}): JobManager {
    const m = new JobManager(path.resolve(runsDir), keys, log);
    fs.mkdirSync(m.runsDir, { recursive: true });
    const queued: Job[] = [];
    for (const entry of fs.readdirSync(m.runsDir, { withFileTypes: true })) {
      if (entry.name.startsWith(UPLOAD_PREFIX)) {
        fs.rmSync(path.join(m.runsDir, entry.name), { force: true, recursive: true }); // an upload cut short by a kill
        continue;
      }
      if (!entry.isDirectory()) continue;
      const dir = path.join(m.runsDir, entry.name);
      const file = path.join(dir, JOB_FILE);
      if (!fs.existsSync(file)) continue;
      let record: JobRecord;
      try {
        record = JSON.parse(fs.readFileSync(file, 'utf8')) as JobRecord;
        if (typeof record.state !== 'string' || !Array.isArray(record.completedStages)) throw new Error('not a job record');
      } catch (err) {
        log(`gptmed-serve: ${file}: unreadable (${(err as Error).message}); that job is not listed`);
        continue;
      }
      record.id = entry.name; // the directory's name is the id, also for a run directory moved here
      const job = new Job(record, dir);
      job.seq = m.countEvents(job);
      const metrics = path.join(dir, 'metrics.jsonl');
      if (fs.existsSync(metrics)) for (const rec of readMetrics(metrics)) applyRecord(job, rec, null);
      record.progress.etaSeconds = record.state === 'succeeded' ? 0 : null;
      m.jobs.set(record.id, job);
      if (record.state === 'running') {
        record.pid = null;
        m.setState(job, 'interrupted');
      } else if (record.state === 'queued') {
        queued.push(job);
      }
    }
    queued.sort((a, b) => a.record.queuedAt.localeCompare(b.record.queuedAt));
    m.queue.push(...queued);
    m.pump();
    return m;
  }

  /** A fresh path under runsDir for an upload in progress (removed by the caller on failure, or at the next start). */
  uploadPath(): string {
    return path.join(this.runsDir, `${UPLOAD_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  list(): Job[] {
    return [...this.jobs.values()].sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt) || a.record.id.localeCompare(b.record.id));
  }

  /** Make the job's directory from an upload, queue it, and start it if nothing runs. */
  create(n: NewJob): Job {
    if (this.closing) throw new ApiError(503, 'the server is shutting down', null, 'server_error', 'shutting_down');
    const id = n.config.name ?? newId();
    const dir = path.join(this.runsDir, id);
    if (fs.existsSync(dir)) throw new ApiError(409, `config.name: ${id} already exists under the runs directory; choose another name`, 'config.name', 'invalid_request_error', 'name_taken');
    const filename = safeFilename(n.filename);
    fs.mkdirSync(path.join(dir, 'upload'), { recursive: true });
    fs.renameSync(n.upload, path.join(dir, 'upload', filename));
    const qaText = n.config.format === undefined && isQaText(path.join(dir, 'upload', filename));
    // Stages with nothing to do count as done: Q&A text needs no conversion, a fine-tune keeps its model's tokenizer.
    const completedStages: Stage[] = [...(qaText ? ['convert' as const] : []), ...(n.initFrom ? ['train-tokenizer' as const] : [])];
    const t = now();
    const record: JobRecord = {
      version: 1,
      id,
      name: n.config.name ?? null,
      state: 'queued',
      stage: null,
      completedStages,
      config: n.config,
      upload: { file: `upload/${filename}`, filename: n.filename, bytes: n.bytes, qaText },
      ...(n.initFrom ? { initFrom: n.initFrom } : {}),
      createdAt: t,
      queuedAt: t,
      startedAt: null,
      finishedAt: null,
      error: null,
      progress: emptyProgress(),
      pid: null,
    };
    const job = new Job(record, dir);
    this.jobs.set(id, job);
    this.setState(job, 'queued');
    this.queue.push(job);
    this.pump();
    return job;
  }

  /** Stop a job: a queued one leaves the queue; a running one gets SIGINT (gptmed-train saves a checkpoint first). */
  async cancel(job: Job): Promise<Job> {
    const r = job.record;
    if (r.state === 'queued') {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.setState(job, 'cancelled');
      return job;
    }
    if (r.state !== 'running') throw new ApiError(409, `job ${r.id} is ${r.state}; only a queued or running job can be cancelled`, null, 'invalid_request_error', 'job_not_running');
    this.stop(job, 'cancel');
    await Promise.race([job.done, sleep(CANCEL_WAIT_MS)]);
    return job;
  }

  /** Queue a cancelled or interrupted job again: training continues from its latest checkpoint, other stages rerun. */
  resume(job: Job): Job {
    const r = job.record;
    if (this.closing) throw new ApiError(503, 'the server is shutting down', null, 'server_error', 'shutting_down');
    if (!RESUMABLE.has(r.state)) {
      throw new ApiError(409, `job ${r.id} is ${r.state}; only a cancelled or interrupted job can be resumed`, null, 'invalid_request_error', 'job_not_resumable');
    }
    r.error = null;
    r.finishedAt = null;
    r.queuedAt = now();
    this.setState(job, 'queued');
    this.queue.push(job);
    this.pump();
    return job;
  }

  /** The events so far and a listener for the next ones, taken in one go (no event lost or sent twice). */
  subscribe(job: Job, listener: (e: JobEvent) => void): { history: JobEvent[]; unsubscribe: () => void } {
    const history = this.readEvents(job);
    job.events.on('event', listener);
    return { history, unsubscribe: () => job.events.off('event', listener) };
  }

  /**
   * Server shutdown, first half (Fastify's preClose, which must end within its plugin timeout): no job starts
   * any more, the running one gets SIGINT (gptmed-train saves a checkpoint), a short wait for it, then the open
   * event streams end (the server cannot close while they are open).
   */
  async beginClose(): Promise<void> {
    this.closing = true;
    const job = this.running;
    if (job?.done) {
      if (job.stopRequest !== 'cancel') this.stop(job, 'shutdown');
      await Promise.race([job.done, sleep(PRE_CLOSE_WAIT_MS)]);
    }
    for (const j of this.jobs.values()) j.events.emit('close');
  }

  /**
   * Second half (onClose, no time limit): wait for the running job to save and exit, bounded; it is then
   * `interrupted` (or `cancelled`, if that was asked first), to resume after a restart. Queued jobs stay queued.
   */
  async close(): Promise<void> {
    if (!this.closing) await this.beginClose();
    const job = this.running;
    if (!job?.done) return;
    const finished = await Promise.race([job.done.then(() => true), sleep(CLOSE_WAIT_MS).then(() => false)]);
    if (!finished) {
      this.log(`gptmed-serve: job ${job.record.id}: gptmed-${job.record.stage} did not stop within ${CLOSE_WAIT_MS / 1000} s; killing it`);
      job.child?.kill('SIGKILL');
      await Promise.race([job.done, sleep(5000)]);
    }
  }

  private stop(job: Job, why: 'cancel' | 'shutdown'): void {
    if (job.stopRequest) return; // a second SIGINT would make gptmed-train stop without saving
    job.stopRequest = why;
    if (job.child && job.child.exitCode === null && job.child.signalCode === null) job.child.kill('SIGINT');
  }

  private pump(): void {
    if (this.closing || this.running) return;
    const job = this.queue.shift();
    if (!job) return;
    this.running = job;
    job.done = this.run(job).finally(() => {
      this.running = null;
      job.child = null;
      job.stopRequest = null;
      job.done = null;
      this.pump();
    });
  }

  private async run(job: Job): Promise<void> {
    const r = job.record;
    try {
      r.startedAt ??= now();
      r.state = 'running'; // announced with the first stage
      for (const stage of STAGES) {
        if (r.completedStages.includes(stage)) continue;
        if (job.stopRequest) break;
        r.stage = stage;
        this.setState(job, 'running');
        const exit = await this.runStage(job, stage);
        if (exit.code === 0) {
          r.completedStages.push(stage);
          continue;
        }
        if (job.stopRequest) break;
        r.error = exit.error;
        this.finish(job, 'failed');
        return;
      }
      if (STAGES.every((s) => r.completedStages.includes(s))) this.finish(job, 'succeeded');
      else this.finish(job, job.stopRequest === 'cancel' ? 'cancelled' : 'interrupted');
    } catch (err) {
      r.error = `gptmed-serve: error: ${(err as Error).message}`;
      this.finish(job, 'failed');
    }
  }

  private finish(job: Job, state: JobState): void {
    const r = job.record;
    r.finishedAt = now();
    r.pid = null;
    if (state === 'succeeded') r.progress.etaSeconds = 0;
    else r.progress.etaSeconds = null;
    this.setState(job, state);
  }

  /** A stage's command line (paths relative to runsDir, the children's working directory). */
  private stageArgs(job: Job, stage: Stage): string[] {
    const id = job.record.id;
    const rel = (p: string): string => `${id}/${p}`;
    const data = job.record.upload.qaText ? rel(job.record.upload.file) : rel(DATA_FILE);
    const flags = stageFlags(stage, job.record.config, this.keys);
    switch (stage) {
      case 'convert':
        return [rel(job.record.upload.file), '--output', rel(DATA_FILE), '--force', '--quiet', ...flags];
      case 'train-tokenizer':
        return ['--input', data, '--output-prefix', rel(TOKENIZER_PREFIX), '--force', '--quiet', ...flags];
      case 'tokenize': {
        const tokenizer = job.record.initFrom?.tokenizer ?? rel(`${TOKENIZER_PREFIX}.model`);
        return ['--input', data, '--tokenizer', tokenizer, '--output-dir', rel(SHARDS_DIR), '--force', '--quiet', ...flags];
      }
      case 'train': {
        const inputs = ['--train-data', rel(`${SHARDS_DIR}/train.npy`), '--val-data', rel(`${SHARDS_DIR}/val.npy`), '--checkpoint-dir', id];
        const base = job.record.initFrom ? ['--init-from', job.record.initFrom.checkpoint] : [];
        // A run with a checkpoint continues from it (its saved settings); one without starts over.
        return latestStep(job.dir) !== null ? ['--resume', ...inputs] : [...inputs, ...base, '--force', ...flags];
      }
    }
  }

  /** Run one stage as a child process; its output goes to job.log, its metrics (train) to events. */
  private runStage(job: Job, stage: Stage): Promise<{ code: number | null; error: string }> {
    const args = this.stageArgs(job, stage);
    const logFile = path.join(job.dir, LOG_FILE);
    const logFd = fs.openSync(logFile, 'a');
    const logStart = fs.fstatSync(logFd).size;
    fs.writeSync(logFd, `\n[${now()}] $ gptmed-${stage} ${args.join(' ')}\n`);

    let tail: MetricsTail | null = null;
    if (stage === 'train') {
      const file = path.join(job.dir, 'metrics.jsonl');
      const resumeStep = args[0] === '--resume' ? latestStep(job.dir) : null;
      const kept = resumeStep !== null && fs.existsSync(file) ? readMetrics(file).filter((rec) => rec.step <= resumeStep).length : 0;
      job.etaBase = null;
      tail = new MetricsTail(file, inode(file), kept, (rec) => {
        applyRecord(job, rec, Date.now());
        this.emit(job, 'metrics', rec);
        if (Date.now() - job.savedAt > PROGRESS_SAVE_MS) this.save(job); // job.json's progress, now and then
      });
    }

    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(process.execPath, [path.join(packageRoot, 'bin', `gptmed-${stage}.js`), ...args], {
          cwd: this.runsDir,
          // Its own process group: a Ctrl-C at the server's terminal reaches the server, which stops the job once.
          detached: true,
          stdio: ['ignore', logFd, logFd],
          env: { ...process.env, CI: '1' },
        });
      } catch (err) {
        fs.closeSync(logFd);
        resolve({ code: null, error: `gptmed-serve: error: cannot start gptmed-${stage}: ${(err as Error).message}` });
        return;
      }
      job.child = child;
      job.record.pid = child.pid ?? null;
      this.save(job);
      if (job.stopRequest) child.kill('SIGINT'); // cancelled while it was being started
      const timer = tail ? setInterval(() => tail.poll(), METRICS_POLL_MS) : null;
      let settled = false;
      const done = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
        if (settled) return;
        settled = true;
        if (timer) clearInterval(timer);
        tail?.poll(); // the records written last
        job.child = null;
        job.record.pid = null;
        fs.closeSync(logFd);
        const line =
          errorLineIn(logFile, logStart, stage) ??
          (spawnError
            ? `gptmed-serve: error: cannot start gptmed-${stage}: ${spawnError.message}`
            : `gptmed-${stage}: error: exited with ${signal ? `signal ${signal}` : `status ${code}`} (see ${job.record.id}/${LOG_FILE})`);
        resolve({ code: spawnError ? null : code, error: line });
      };
      child.once('error', (err) => done(null, null, err));
      child.once('exit', (code, signal) => done(code, signal));
    });
  }

  private setState(job: Job, state: JobState): void {
    const r = job.record;
    r.state = state;
    this.save(job);
    this.emit(job, 'state', { id: r.id, state, stage: r.stage, error: r.error, at: now() });
    if (ENDED.has(state)) job.events.emit('end');
  }

  private save(job: Job): void {
    job.savedAt = Date.now();
    writeFileAtomic(path.join(job.dir, JOB_FILE), `${JSON.stringify(job.record, null, 2)}\n`);
  }

  private emit(job: Job, event: JobEvent['event'], data: object): void {
    const e: JobEvent = { id: ++job.seq, event, data };
    try {
      fs.appendFileSync(path.join(job.dir, EVENTS_FILE), `${JSON.stringify(e)}\n`);
    } catch (err) {
      this.log(`gptmed-serve: job ${job.record.id}: cannot record an event (${(err as Error).message})`);
    }
    job.events.emit('event', e);
  }

  private readEvents(job: Job): JobEvent[] {
    const out: JobEvent[] = [];
    let text = '';
    try {
      text = fs.readFileSync(path.join(job.dir, EVENTS_FILE), 'utf8');
    } catch {
      return out;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as JobEvent);
      } catch {
        // cut short by a kill
      }
    }
    return out;
  }

  private countEvents(job: Job): number {
    const events = this.readEvents(job);
    return events.length > 0 ? events[events.length - 1].id : 0;
  }
}

export type { Job };
