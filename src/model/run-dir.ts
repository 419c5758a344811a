/**
 * THE run directory (gptmed-train's --checkpoint-dir; MANUAL.md "train",
 * section "Checkpoint directory"): the one module that knows its layout.
 *   <run>/step-000500/           a checkpoint (src/model/checkpoint.ts writes and reads one)
 *   <run>/latest, <run>/best     one line: the name of a step directory
 *   <run>/tokenizer.model        the run's copy of its tokenizer
 *   <run>/config.json            the run's resolved settings (gptmed-train --config reads it back)
 *   <run>/metrics.jsonl          the training log; <run>/tensorboard/ the same for TensorBoard
 * Pointers are replaced atomically, so a kill at any moment leaves loadable
 * checkpoints. Here too: resolving what a user gives to a step directory, one
 * run at a time (a lock), refusing to overwrite a run or setting it aside,
 * keeping the last N step directories, and clearing what a killed run left.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isRunning, writeFileAtomic } from '../common/atomic.js';
import { UserError } from '../common/errors.js';
import { sha256File } from '../common/hash.js';
import {
  manifestFile,
  modelArrays,
  modelFromCheckpoint,
  readManifest,
  writeCheckpoint,
  type CheckpointManifest,
  type JsonObject,
  type ManifestFields,
  type NamedArray,
} from './checkpoint.js';
import type { ModelConfig } from './config.js';
import type { GPT } from './gpt.js';

export type PointerName = 'latest' | 'best';

/** The run's own copy of its tokenizer, beside the step directories: a run directory moved or copied still has it. */
export const runTokenizerFile = 'tokenizer.model';
/** What a new manifest's tokenizer.file says: the run's copy, relative to the step directory. */
export const runTokenizerRef = `../${runTokenizerFile}`;
export const runConfigFile = 'config.json';
export const metricsFile = 'metrics.jsonl';
export const tensorboardDir = 'tensorboard';

const stepDirPattern = /^step-(\d+)$/;
/** Temporary siblings written by writeDirAtomic / writeFileAtomic (".<name>.tmp-<pid>-..."). */
const tempPattern = /^\.(step-\d+|latest|best|metrics\.jsonl|tokenizer\.model|config\.json)\.tmp-/;

export function stepDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** Write the model, its manifest and the optimizer arrays (if any) as `<runDir>/step-NNNNNN`. Returns the step directory. */
export async function saveCheckpoint(runDir: string, model: GPT, fields: ManifestFields, optimizer: readonly NamedArray[] | null): Promise<string> {
  return saveCheckpointArrays(runDir, { ...fields, modelConfig: model.config }, await modelArrays(model), optimizer);
}

/** saveCheckpoint from plain arrays (no tfjs): `weights` in parameterSpecs order. gptmed-import writes its checkpoint with this. */
export function saveCheckpointArrays(
  runDir: string,
  fields: ManifestFields & { modelConfig: ModelConfig },
  weights: readonly NamedArray[],
  optimizer: readonly NamedArray[] | null,
): string {
  const dir = path.join(runDir, stepDirName(fields.step));
  writeCheckpoint(dir, fields, weights, optimizer);
  return dir;
}

/** Point `<runDir>/<name>` at a step directory (atomically). */
export function writePointer(runDir: string, name: PointerName, stepDir: string): void {
  writeFileAtomic(path.join(runDir, name), `${path.basename(stepDir)}\n`);
}

/**
 * What to do about a checkpoint that cannot be used, with the flag that takes another:
 * gptmed-train's --resume-from, or --checkpoint in gptmed-generate and gptmed-evaluate.
 */
const useAnother = (flag: string): string => `give another checkpoint with ${flag}`;

/** Why a step directory that should hold a checkpoint does not: it is gone, or it lacks its manifest. */
function stepDirProblem(dir: string): string | null {
  if (!fs.existsSync(dir)) return 'which is missing';
  if (!fs.existsSync(path.join(dir, manifestFile))) return `which has no ${manifestFile} (an incomplete or damaged checkpoint)`;
  return null;
}

/** The step directory a pointer names, or null when there is no pointer; `flag` is the one the user gave the checkpoint with. */
export function readPointer(runDir: string, name: PointerName, flag = '--resume-from'): string | null {
  const file = path.join(runDir, name);
  if (!fs.existsSync(file)) return null;
  const target = fs.readFileSync(file, 'utf8').trim();
  if (!stepDirPattern.test(target)) throw new UserError(`${file}: expected the name of a step directory (step-NNNNNN), found "${target.slice(0, 40)}"`);
  const dir = path.join(runDir, target);
  const problem = stepDirProblem(dir);
  if (problem) throw new UserError(`${file}: points to ${target}, ${problem}; ${useAnother(flag)}`);
  return dir;
}

/**
 * A step directory from what a user gives: a step directory, its manifest.json,
 * a `best`/`latest` pointer file, or a run directory (its `best`, else `latest`).
 * `flag` names the option it came from, for the advice in messages.
 */
export function resolveCheckpoint(pathOrRunDir: string, prefer: PointerName = 'best', flag = '--resume-from'): string {
  if (!fs.existsSync(pathOrRunDir)) throw new UserError(`${pathOrRunDir}: no such checkpoint or run directory`);
  const st = fs.statSync(pathOrRunDir);
  if (st.isFile()) {
    const base = path.basename(pathOrRunDir);
    if (base === manifestFile) return path.dirname(pathOrRunDir);
    if (base === 'best' || base === 'latest') return readPointer(path.dirname(pathOrRunDir), base, flag)!;
    throw new UserError(`${pathOrRunDir}: not a checkpoint; give a run directory or a step-NNNNNN directory`);
  }
  if (fs.existsSync(path.join(pathOrRunDir, manifestFile))) return pathOrRunDir;
  if (stepDirPattern.test(path.basename(path.resolve(pathOrRunDir)))) {
    throw new UserError(`${pathOrRunDir}: a step directory without ${manifestFile} (an incomplete or damaged checkpoint); ${useAnother(flag)}`);
  }
  const other: PointerName = prefer === 'best' ? 'latest' : 'best';
  const found = readPointer(pathOrRunDir, prefer, flag) ?? readPointer(pathOrRunDir, other, flag);
  if (!found) throw new UserError(`${pathOrRunDir}: no checkpoint here (no manifest.json, no best or latest pointer); train first with gptmed-train`);
  return found;
}

/**
 * Load a trained model: `pathOrRunDir` is a step directory, or a run directory
 * (its `best`, else its `latest`), given with `flag` (named in messages). The
 * backend must be initialised first (initBackend in src/backend).
 */
export async function loadCheckpoint(pathOrRunDir: string, flag = '--checkpoint'): Promise<{ model: GPT; manifest: CheckpointManifest; dir: string }> {
  const dir = resolveCheckpoint(pathOrRunDir, 'best', flag);
  const manifest = readManifest(dir);
  return { model: modelFromCheckpoint(dir, manifest), manifest, dir };
}

/**
 * The tokenizer file of a checkpoint: the manifest's (relative to the step directory), else the run's
 * copy (a checkpoint written before runs kept one names an absolute path that may be gone). The first
 * with the recorded sha256 wins; else the first that exists (the caller reports the change); null if none.
 */
export function checkpointTokenizerPath(stepDir: string, manifest: CheckpointManifest): string | null {
  const candidates = [...new Set([path.resolve(stepDir, manifest.tokenizer.file), path.resolve(stepDir, runTokenizerRef)])].filter((f) => fs.existsSync(f));
  return candidates.find((f) => sha256File(f) === manifest.tokenizer.sha256) ?? candidates[0] ?? null;
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

/** Write the run's settings to `<runDir>/config.json` (atomically), unless it already says the same. */
export function writeRunConfig(runDir: string, settings: JsonObject): void {
  const file = path.join(runDir, runConfigFile);
  const text = `${JSON.stringify(settings, null, 2)}\n`;
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text) return;
  writeFileAtomic(file, text);
}

function stepDirs(runDir: string): Array<{ name: string; step: number }> {
  if (!fs.existsSync(runDir)) return [];
  return fs
    .readdirSync(runDir)
    .map((name) => ({ name, m: stepDirPattern.exec(name) }))
    .filter((e) => e.m !== null)
    .map((e) => ({ name: e.name, step: Number(e.m![1]) }))
    .sort((a, b) => a.step - b.step);
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

/** Remove temporaries a killed run left behind (a kill during a save). */
export function removeStaleTemporaries(runDir: string): void {
  if (!fs.existsSync(runDir)) return;
  for (const name of fs.readdirSync(runDir)) {
    if (tempPattern.test(name)) fs.rmSync(path.join(runDir, name), { recursive: true, force: true });
  }
}

/** What a run leaves in its directory (everything --force removes). */
function runEntries(runDir: string): string[] {
  if (!fs.existsSync(runDir)) return [];
  const ours = new Set(['latest', 'best', metricsFile, tensorboardDir, runTokenizerFile, runConfigFile]);
  return fs.readdirSync(runDir).filter((n) => ours.has(n) || stepDirPattern.test(n) || tempPattern.test(n));
}

/** A new run must not overwrite one already in `runDir` unless `force`. Checked before any work starts. */
export function refuseExistingRun(runDir: string, force: boolean): void {
  const entries = runEntries(runDir);
  if (entries.length === 0 || force) return;
  if (entries.length === 1 && entries[0] === runConfigFile) {
    // A settings file kept where its run will go: the run would replace it with its resolved settings.
    throw new UserError(`${path.join(runDir, runConfigFile)}: a run's settings file is already there; choose another --checkpoint-dir, or pass --force to replace it with this run's`);
  }
  throw new UserError(`${runDir} already holds a training run; continue it with --resume, choose another --checkpoint-dir, or pass --force to start over`);
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
