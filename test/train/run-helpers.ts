/** Shards from the real pipeline, tiny training runs through the CLI, and what they logged. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CheckpointManifest } from '../../src/model/index.js';
import { readMetrics, type MetricsRecord } from '../../src/train/metrics.js';
import { fixturesDir, repoRoot, runCli, type CliResult } from '../helpers.js';

export const quizFile = path.join(fixturesDir, 'train', 'quiz.qa.txt');

export interface Shards {
  dir: string;
  train: string;
  val: string;
  tokenizer: string;
}

/** Tokenizer and shards of the quiz fixture, made by gptmed-train-tokenizer and gptmed-tokenize. */
export function buildShards(dir: string, opts: { maxLength?: number; maskPrompt?: boolean; vocabSize?: number; name?: string; shardSize?: number } = {}): Shards {
  const name = opts.name ?? 'quiz';
  const prefix = path.join(dir, name);
  const tok = runCli('train-tokenizer', ['--input', quizFile, '--output-prefix', prefix, '--vocab-size', String(opts.vocabSize ?? 300), '--quiet']);
  assert.equal(tok.status, 0, tok.stderr);
  const out = path.join(dir, `${name}-shards`);
  const args = ['--input', quizFile, '--tokenizer', `${prefix}.model`, '--output-dir', out, '--max-length', String(opts.maxLength ?? 32)];
  if (opts.maskPrompt) args.push('--mask-prompt');
  if (opts.shardSize) args.push('--shard-size', String(opts.shardSize));
  const shards = runCli('tokenize', args);
  assert.equal(shards.status, 0, shards.stderr);
  const split = opts.shardSize ? '-00000.npy' : '.npy';
  return { dir: out, train: path.join(out, `train${split}`), val: path.join(out, `val${split}`), tokenizer: `${prefix}.model` };
}

/** Flag values: a number or string is `--flag value`, true is `--flag`, null leaves the flag out. */
export type Flags = Record<string, string | number | boolean | null>;

/** A model small enough for tests (about 30k parameters at this vocabulary). */
export const tinyModel: Flags = { 'model-size': 'tiny', 'd-model': 32, 'n-layers': 1, 'n-heads': 2, 'd-ff': 64, 'max-seq-len': 64 };

export function toArgs(flags: Flags): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(flags)) {
    if (value === null || value === false) continue;
    args.push(`--${name}`);
    if (value !== true) args.push(String(value));
  }
  return args;
}

/** Arguments of a short, fully specified run on `shards` into `runDir`; `extra` adds or replaces flags. */
export function runFlags(shards: Shards, runDir: string, extra: Flags = {}): string[] {
  return toArgs({
    ...tinyModel,
    'train-data': shards.train,
    'val-data': shards.val,
    'checkpoint-dir': runDir,
    device: 'wasm',
    'batch-size': 8,
    'learning-rate': 3e-3,
    'warmup-steps': 3,
    'eval-interval': 4,
    'eval-batches': 2,
    'log-interval': 4,
    ...extra,
  });
}

export function train(args: string[]): CliResult {
  return runCli('train', args);
}

export function metrics(runDir: string): MetricsRecord[] {
  return readMetrics(path.join(runDir, 'metrics.jsonl'));
}

/** Training loss per step, from metrics.jsonl. */
export function lossCurve(runDir: string): Map<number, number> {
  return new Map(metrics(runDir).filter((r) => r.type === 'train').map((r) => [r.step, r.loss as number]));
}

/** The step directory a pointer file names. */
export function pointer(runDir: string, name: 'latest' | 'best'): string {
  return fs.readFileSync(path.join(runDir, name), 'utf8').trim();
}

export interface Spawned {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start gptmed-train in the background. */
export function spawnTrain(args: string[]): Spawned {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'gptmed-train.js'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, CI: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => err, exit };
}

/** Wait until `check` holds (polling), or fail after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** runFlags without the model's shape (with --init-from it comes from the checkpoint). */
export const noShape: Flags = { 'model-size': null, 'd-model': null, 'n-layers': null, 'n-heads': null, 'd-ff': null, 'max-seq-len': null };

export const manifestOf = (stepDir: string): CheckpointManifest => JSON.parse(fs.readFileSync(path.join(stepDir, 'manifest.json'), 'utf8'));

/** A refused command: its exit status, one line on stderr matching `pattern`, and no run directory written. */
export function assertRefused(args: string[], run: string, status: number, pattern: RegExp): void {
  const r = train(args);
  assert.equal(r.status, status, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(!fs.existsSync(run), `${run} was written`);
}

/** The quiz's shards in `work`, and a run on them (40 steps) to start others from (--init-from): its run directory and best step directory. */
export function trainedSource(work: string, name: string): { shards: Shards; run: string; best: string } {
  const shards = buildShards(work);
  const run = path.join(work, name);
  const r = train(runFlags(shards, run, { 'max-steps': 40, 'learning-rate': 1e-2, 'eval-interval': 20, 'save-interval': 20 }));
  assert.equal(r.status, 0, r.stderr);
  return { shards, run, best: path.join(run, pointer(run, 'best')) };
}
