/**
 * The run directory (--checkpoint-dir) around the checkpoint format: one run
 * at a time (a lock), refusing to overwrite a run, keeping the last N step
 * directories (never the one `best` or `latest` names), and clearing what a
 * killed run left half-written.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isRunning, writeFileAtomic } from '../common/atomic.js';
import { UserError } from '../common/errors.js';
import { sha256File } from '../common/hash.js';
import { readPointer, runTokenizerFile, runTokenizerRef, type CheckpointManifest } from '../model/checkpoint.js';

export const metricsFile = 'metrics.jsonl';
export const tensorboardDir = 'tensorboard';

const stepDirPattern = /^step-(\d+)$/;
/** Temporary siblings written by writeDirAtomic / writeFileAtomic (".<name>.tmp-<pid>-..."). */
const tempPattern = /^\.(step-\d+|latest|best|metrics\.jsonl|tokenizer\.model)\.tmp-/;

function stepDirs(runDir: string): Array<{ name: string; step: number }> {
  if (!fs.existsSync(runDir)) return [];
  return fs
    .readdirSync(runDir)
    .map((name) => ({ name, m: stepDirPattern.exec(name) }))
    .filter((e) => e.m !== null)
    .map((e) => ({ name: e.name, step: Number(e.m![1]) }))
    .sort((a, b) => a.step - b.step);
}

/** What a run leaves in its directory (everything --force removes). */
function runEntries(runDir: string): string[] {
  if (!fs.existsSync(runDir)) return [];
  const ours = new Set(['latest', 'best', metricsFile, tensorboardDir, runTokenizerFile]);
  return fs.readdirSync(runDir).filter((n) => ours.has(n) || stepDirPattern.test(n) || tempPattern.test(n));
}

/** A new run must not overwrite one already in `runDir` unless `force`. Checked before any work starts. */
export function refuseExistingRun(runDir: string, force: boolean): void {
  if (runEntries(runDir).length > 0 && !force) {
    throw new UserError(`${runDir} already holds a training run; continue it with --resume, choose another --checkpoint-dir, or pass --force to start over`);
  }
}

/** Where a new run keeps the run it replaces (--force) until its own first checkpoint. */
const replacedPrefix = '.replaced-run-';

/**
 * Start a new run in `runDir`: a previous run's files (only those: other files
 * in the directory stay) are moved aside, not removed, so that a new run that
 * fails or is killed before its first checkpoint gives them back
 * (`settleReplacedRun`).
 */
export function setPreviousRunAside(runDir: string): void {
  const entries = runEntries(runDir);
  fs.mkdirSync(runDir, { recursive: true });
  if (entries.length === 0) return;
  const aside = path.join(runDir, `${replacedPrefix}${process.pid}-${Date.now()}`);
  fs.mkdirSync(aside);
  for (const name of entries) fs.renameSync(path.join(runDir, name), path.join(aside, name));
}

/**
 * Settle a replaced run: once the new run has a checkpoint (`latest`) the
 * replaced run is removed; while it has none (it failed, or was killed), the
 * new run's files are removed and the replaced run moved back. Only the lock's
 * holder calls this, so every aside here is its own or a dead run's.
 */
export function settleReplacedRun(runDir: string): void {
  if (!fs.existsSync(runDir)) return;
  for (const aside of fs.readdirSync(runDir).filter((n) => n.startsWith(replacedPrefix))) {
    const dir = path.join(runDir, aside);
    if (readPointer(runDir, 'latest')) {
      fs.rmSync(dir, { recursive: true, force: true });
      continue;
    }
    for (const name of runEntries(runDir)) fs.rmSync(path.join(runDir, name), { recursive: true, force: true });
    for (const name of fs.readdirSync(dir)) fs.renameSync(path.join(dir, name), path.join(runDir, name));
    fs.rmdirSync(dir);
  }
}

/** Undo a new run that failed before its first checkpoint: its files go, and a run it replaced comes back. */
export function abandonNewRun(runDir: string): void {
  for (const name of runEntries(runDir)) fs.rmSync(path.join(runDir, name), { recursive: true, force: true });
  settleReplacedRun(runDir);
}

/**
 * Keep the run's own copy of its tokenizer (tokenizer.model beside the step directories), so that a run
 * directory moved, copied or downloaded still generates. Returns what manifests record: the copy, relative
 * to a step directory; the shards' path as it is only where that tokenizer is gone or changed (training
 * noted it), as before runs kept a copy.
 */
export function keepTokenizerCopy(runDir: string, tokenizer: { file: string; sha256: string }): CheckpointManifest['tokenizer'] {
  const copy = path.join(runDir, runTokenizerFile);
  const record = { file: runTokenizerRef, sha256: tokenizer.sha256, source: tokenizer.file };
  if (fs.existsSync(copy) && sha256File(copy) === tokenizer.sha256) return record;
  if (!fs.existsSync(tokenizer.file) || sha256File(tokenizer.file) !== tokenizer.sha256) return { file: tokenizer.file, sha256: tokenizer.sha256 };
  writeFileAtomic(copy, fs.readFileSync(tokenizer.file));
  return record;
}

/** Remove temporaries a killed run left behind (a kill during a save). */
export function removeStaleTemporaries(runDir: string): void {
  if (!fs.existsSync(runDir)) return;
  for (const name of fs.readdirSync(runDir)) {
    if (tempPattern.test(name)) fs.rmSync(path.join(runDir, name), { recursive: true, force: true });
  }
}

/** Keep the newest `keepLast` step directories plus those `latest` and `best` point to. */
export function pruneCheckpoints(runDir: string, keepLast: number): void {
  const all = stepDirs(runDir);
  const keep = new Set(all.slice(-keepLast).map((d) => d.name));
  for (const pointer of ['latest', 'best'] as const) {
    const target = readPointer(runDir, pointer);
    if (target) keep.add(path.basename(target));
  }
  for (const d of all) if (!keep.has(d.name)) fs.rmSync(path.join(runDir, d.name), { recursive: true, force: true });
}

/** The lock file a running gptmed-train holds in its run directory. */
const lockFile = '.gptmed-train.lock';

interface LockOwner {
  pid: number;
  host: string;
  started: string;
}

/**
 * Take the run directory for this process: two runs writing one directory
 * would interleave their step directories and metrics. The lock is a file
 * created exclusively, holding the owner's pid; a lock whose process no longer
 * runs on this host (killed with SIGKILL) is taken over. Returns the release.
 */
export function lockRunDir(runDir: string): () => void {
  const file = path.join(runDir, lockFile);
  const created = !fs.existsSync(runDir);
  fs.mkdirSync(runDir, { recursive: true });
  const release = (): void => {
    fs.rmSync(file, { force: true });
    // A run refused before it wrote anything leaves no empty directory it made.
    if (created && fs.existsSync(runDir) && fs.readdirSync(runDir).length === 0) fs.rmdirSync(runDir);
  };
  const me: LockOwner = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx' });
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = readLockOwner(file);
    // A second EEXIST: another run took the stale lock in the same moment; it holds it now.
    if (attempt > 0 || (owner && isAlive(owner))) {
      const who = owner ? ` (pid ${owner.pid} on ${owner.host}, started ${owner.started})` : '';
      throw new UserError(`${runDir} is in use by another gptmed-train${who}; wait for it to finish, stop it, or choose another --checkpoint-dir`);
    }
    fs.rmSync(file, { force: true }); // stale: its owner is gone
  }
}

function readLockOwner(file: string): LockOwner | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockOwner>;
    return typeof v.pid === 'number' ? { pid: v.pid, host: String(v.host), started: String(v.started) } : null;
  } catch {
    return null; // unreadable (a kill while writing it): nobody can hold it
  }
}

/** Whether the lock's owner still runs; one on another host (a shared disk) is taken to. */
function isAlive(owner: LockOwner): boolean {
  return owner.host !== os.hostname() || isRunning(owner.pid);
}
