/**
 * The run directory (--checkpoint-dir) around the checkpoint format: refusing
 * to overwrite a run, keeping the last N step directories (never the one
 * `best` or `latest` names), and clearing what a killed run left half-written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../common/errors.js';
import { readPointer } from '../model/checkpoint.js';

export const metricsFile = 'metrics.jsonl';
export const tensorboardDir = 'tensorboard';

const stepDirPattern = /^step-(\d+)$/;
/** Temporary siblings written by writeDirAtomic / writeFileAtomic (".<name>.tmp-<pid>-..."). */
const tempPattern = /^\.(step-\d+|latest|best|metrics\.jsonl)\.tmp-/;

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
  const ours = new Set(['latest', 'best', metricsFile, tensorboardDir]);
  return fs.readdirSync(runDir).filter((n) => ours.has(n) || stepDirPattern.test(n) || tempPattern.test(n));
}

/** A new run must not overwrite one already in `runDir` unless `force`. Checked before any work starts. */
export function refuseExistingRun(runDir: string, force: boolean): void {
  if (runEntries(runDir).length > 0 && !force) {
    throw new UserError(`${runDir} already holds a training run; continue it with --resume, choose another --checkpoint-dir, or pass --force to start over`);
  }
}

/** Start a new run in `runDir`: remove a previous run's files (only those: other files in the directory stay). */
export function clearRun(runDir: string): void {
  for (const name of runEntries(runDir)) fs.rmSync(path.join(runDir, name), { recursive: true, force: true });
  fs.mkdirSync(runDir, { recursive: true });
}

/** Undo a new run that failed before its first checkpoint: its files, and the directory if that empties it. */
export function removeFailedRun(runDir: string): void {
  for (const name of runEntries(runDir)) fs.rmSync(path.join(runDir, name), { recursive: true, force: true });
  if (fs.existsSync(runDir) && fs.readdirSync(runDir).length === 0) fs.rmdirSync(runDir);
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
