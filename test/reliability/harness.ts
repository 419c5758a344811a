/**
 * The reliability suite's table-driven runner (issue 10, "Done when").
 *
 * A case runs one built binary (bin/gptmed-<command>.js over dist/, as a user would) in a directory of its
 * own, after `setup` has written the files the user had there. It then asserts three things:
 *   1. the exit status;
 *   2. stderr ends in exactly one line `gptmed-<command>: error: <message>`, whose message starts with the
 *      expected text (or matches the expected pattern), and holds no stack trace, no "internal error", no
 *      raw `Error:` or Emscripten `Aborted()` (other lines, such as progress lines, may come before it);
 *   3. nothing the user had was lost: every file, symlink and directory present before the run (in the case
 *      directory, and any outside path the case names with `keep`) is there afterwards with the same bytes,
 *      no hidden temporary (`.NAME.tmp-...`) is left anywhere in them, and a failing run leaves no new file
 *      (a partial output). A new empty directory is tolerated (a `mkdir -p` of an output's parent).
 *
 * The expensive inputs (a tokenizer, shards, a tiny trained run) are built once per test file by
 * `buildArtefacts`, from the bundled real data, through the CLI; a case that needs to change one copies it
 * into its own directory first (`ctx.copy`).
 *
 * Cases run as child processes with a bounded wait (`timeoutMs`, then SIGKILL), not through the synchronous
 * `runCli` of test/helpers.ts: a command that hangs (or allocates for minutes, as `--d-model 16384` does
 * today) must fail its case, not stall the suite, and two cases can run at once on the test machine's two
 * cores. The binary, the working directory and the environment are the ones `runCli` uses.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { referenceDir, repoRoot, runCli, tempDir } from '../helpers.js';

export type Command = 'convert' | 'train-tokenizer' | 'tokenize' | 'train' | 'generate' | 'evaluate';

/** Paths of the artefacts shared by the cases of one test file (read-only: copy before changing). */
export interface Artefacts {
  root: string;
  /** Real Q&A text: the BSD games trivia quiz (1,401 short pairs). */
  qa: string;
  /** Its first 12 pairs: a cheap evaluation set or question file. */
  smallQa: string;
  /** A Q&A tokenizer trained on `qa` (vocabulary 300), and its .vocab. */
  tokenizer: string;
  vocab: string;
  /** Shards of `qa` (rows of 32 tokens): train.npy, val.npy, meta.json. */
  shards: string;
  /** A tiny model trained for 2 steps on `shards` (best and latest pointers). */
  run: string;
}

export const quizQa = path.join(referenceDir, 'bsdgames-quiz.qa.txt');

/** The tiny model's flags: fast on wasm, one layer. */
export const tinyTrainFlags = ['--model-size', 'tiny', '--d-model', '32', '--n-layers', '1', '--n-heads', '2', '--d-ff', '64', '--max-seq-len', '64', '--device', 'wasm', '--batch-size', '8'];

function must(name: string, args: string[], what: string): void {
  const r = runCli(name, args);
  assert.equal(r.status, 0, `building the shared ${what} failed (gptmed-${name} ${args.join(' ')}):\n${r.stderr}`);
}

/** The first `n` pairs of a Q&A file. */
export function firstPairs(file: string, n: number): string {
  const blocks = fs.readFileSync(file, 'utf8').split(/\n\n+/).filter((b) => b.startsWith('Q:'));
  return `${blocks.slice(0, n).join('\n\n')}\n`;
}

/** Build what the cases share, once, through the CLI (a few seconds). `upTo` stops early for files that need less. */
export function buildArtefacts(upTo: 'tokenizer' | 'shards' | 'run' = 'run'): Artefacts {
  const root = tempDir('gptmed-reliability-art-');
  const a: Artefacts = {
    root,
    qa: path.join(root, 'quiz.qa.txt'),
    smallQa: path.join(root, 'small.qa.txt'),
    tokenizer: path.join(root, 'tok', 'quiz.model'),
    vocab: path.join(root, 'tok', 'quiz.vocab'),
    shards: path.join(root, 'shards'),
    run: path.join(root, 'run'),
  };
  fs.copyFileSync(quizQa, a.qa);
  fs.writeFileSync(a.smallQa, firstPairs(quizQa, 12));
  must('train-tokenizer', ['--input', a.qa, '--output-prefix', path.join(root, 'tok', 'quiz'), '--vocab-size', '300', '--quiet'], 'tokenizer');
  if (upTo === 'tokenizer') return a;
  must('tokenize', ['--input', a.qa, '--tokenizer', a.tokenizer, '--output-dir', a.shards, '--max-length', '32', '--quiet'], 'shards');
  if (upTo === 'shards') return a;
  must(
    'train',
    [...tinyTrainFlags, '--train-data', path.join(a.shards, 'train.npy'), '--val-data', path.join(a.shards, 'val.npy'), '--checkpoint-dir', a.run, '--max-steps', '2', '--eval-batches', '1', '--warmup-steps', '1'],
    'tiny run',
  );
  return a;
}

// ---------------------------------------------------------------------------------------------------------
// Running a binary

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed by the bounded wait. */
  timedOut: boolean;
}

export function binPath(command: Command): string {
  return path.join(repoRoot, 'bin', `gptmed-${command}.js`);
}

/** Run `gptmed-<command>` (as runCli does: same binary and environment) with a bounded wait. */
export function runBin(command: Command, args: string[], opts: { cwd: string; timeoutMs?: number; input?: string }): Promise<RunResult> {
  return runProcess(process.execPath, [binPath(command), ...args], opts);
}

/** Run any program with a bounded wait: SIGKILL after `timeoutMs`. */
export function runProcess(file: string, args: string[], opts: { cwd: string; timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, env: { ...process.env, CI: '1', ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {}); // a command that exits before reading its input
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// What the user had: snapshots of a directory tree

/** Each entry under a root, by relative path: `file <sha256>`, `link <target>` or `dir`. */
export type Snapshot = Map<string, string>;

const sha256 = (p: string): string => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

/** A snapshot of `root` (a file, a link or a directory tree); an absent root gives an empty snapshot. */
export function snapshot(root: string): Snapshot {
  const out: Snapshot = new Map();
  const visit = (p: string, rel: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) out.set(rel, `link ${fs.readlinkSync(p)}`);
    else if (st.isDirectory()) {
      out.set(rel, 'dir');
      for (const name of fs.readdirSync(p).sort()) visit(path.join(p, name), rel === '' ? name : `${rel}/${name}`);
    } else if (st.isFile()) out.set(rel, `file ${sha256(p)}`);
    else out.set(rel, 'other');
  };
  visit(root, '');
  return out;
}

/** A hidden temporary of the atomic writers: `.NAME.tmp-PID-...`. */
export const isTemporary = (rel: string): boolean => rel.split('/').some((part) => /^\..*\.tmp-/.test(part));

/**
 * What went wrong between two snapshots of one root: pre-existing entries changed or gone, temporaries
 * left, new files. `allowed(rel)` marks paths the run may create or change (the output of a run that
 * succeeds); temporaries are never allowed.
 */
export function losses(before: Snapshot, after: Snapshot, label: string, allowed: (rel: string) => boolean = () => false): string[] {
  const problems: string[] = [];
  for (const [rel, was] of before) {
    if (allowed(rel)) continue;
    const now = after.get(rel);
    if (now === undefined) problems.push(`${label}/${rel}: was there before the run, is gone (${was.split(' ')[0]})`);
    else if (now !== was) problems.push(`${label}/${rel}: changed (${was.slice(0, 20)}... -> ${now.slice(0, 20)}...)`);
  }
  for (const [rel, now] of after) {
    if (before.has(rel)) continue;
    if (isTemporary(rel)) problems.push(`${label}/${rel}: a hidden temporary was left behind`);
    else if (now !== 'dir' && !allowed(rel)) problems.push(`${label}/${rel}: new file left behind by a run that should write nothing`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// Checking the one error line

export const errorLinePattern = /^gptmed(-[a-z-]+)?: error: /;

/** Lines that betray a crash instead of a message. */
const crashPatterns: Array<[RegExp, string]> = [
  [/^\s+at .*(\(|:\d+:\d+)/, 'a stack trace'],
  [/internal error/, '"internal error"'],
  [/^(\w*Error|RuntimeError)(: |$)/, 'a raw JavaScript error'],
  [/Aborted\(/, "an Emscripten 'Aborted()'"],
  [/^node:internal|^file:\/\/\//, 'a Node crash header'],
];

/**
 * Check that stderr ends with exactly one error line of `command`, whose message (after `error: `) starts
 * with `expected` (a string) or matches it (a RegExp). Returns the message.
 */
export function assertOneErrorLine(command: Command, stderr: string, expected: string | RegExp, context = ''): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const show = `${context}stderr was:\n${stderr.slice(-3000)}`;
  for (const line of lines) {
    for (const [re, what] of crashPatterns) assert.ok(!re.test(line), `stderr holds ${what}: ${JSON.stringify(line)}\n${show}`);
  }
  const errors = lines.filter((l) => errorLinePattern.test(l) || /\berror:/.test(l));
  assert.equal(errors.length, 1, `expected exactly one error line, got ${errors.length}\n${show}`);
  const last = lines[lines.length - 1] ?? '';
  const prefix = `gptmed-${command}: error: `;
  assert.ok(last.startsWith(prefix), `the last stderr line should start with ${JSON.stringify(prefix)}\n${show}`);
  const message = last.slice(prefix.length);
  if (typeof expected === 'string') assert.ok(message.startsWith(expected), `message should start with ${JSON.stringify(expected)}, is ${JSON.stringify(message)}\n${context}`);
  else assert.match(message, expected, `message should match ${expected}, is ${JSON.stringify(message)}\n${context}`);
  return message;
}

// ---------------------------------------------------------------------------------------------------------
// The cases

export interface CaseContext {
  /** The case's own directory: the working directory of the run. */
  dir: string;
  art: Artefacts;
  /** `dir`/rel. */
  p(rel: string): string;
  /** Write a file (text or bytes) at `dir`/rel, making its parents. */
  write(rel: string, data: string | Uint8Array): string;
  /** Copy a file or a directory tree into `dir`/rel. */
  copy(src: string, rel: string): string;
  /** Also hash this outside path before and after (a file the user owns elsewhere). */
  keep(abs: string): void;
}

export interface Case {
  name: string;
  command: Command;
  /** Arguments; relative paths are relative to the case directory (the working directory). */
  args: string[] | ((ctx: CaseContext) => string[]);
  setup?: (ctx: CaseContext) => void;
  /** Expected exit status. */
  exit: number;
  /** Start of the message after `gptmed-<command>: error: ` (or a pattern it matches); null when the run succeeds (exit 0). */
  message: string | RegExp | null;
  /** Paths (relative to the case directory, or a prefix `name/`) a successful run may create or change. */
  outputs?: string[];
  /** Further checks after the run (e.g. a replaced symlink's target). */
  check?: (ctx: CaseContext, r: RunResult) => void;
  /** Bounded wait for this case (default 60 s), then SIGKILL and a failure. */
  timeoutMs?: number;
  /** Text on stdin (default: none, stdin closed). */
  input?: string;
}

function makeContext(dir: string, art: Artefacts, kept: string[]): CaseContext {
  const p = (rel: string): string => path.join(dir, rel);
  return {
    dir,
    art,
    p,
    write(rel, data) {
      fs.mkdirSync(path.dirname(p(rel)), { recursive: true });
      fs.writeFileSync(p(rel), data);
      return p(rel);
    },
    copy(src, rel) {
      fs.mkdirSync(path.dirname(p(rel)), { recursive: true });
      fs.cpSync(src, p(rel), { recursive: true });
      return p(rel);
    },
    keep(abs) {
      kept.push(abs);
    },
  };
}

/** Run one case and assert everything; throws on the first failed assertion. */
export async function runCase(c: Case, art: Artefacts, root: string): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(root, `${c.command}-`));
  const kept: string[] = [];
  const ctx = makeContext(dir, art, kept);
  c.setup?.(ctx);
  const args = typeof c.args === 'function' ? c.args(ctx) : c.args;
  const before = snapshot(dir);
  const keptBefore = kept.map((k) => snapshot(k));
  const timeoutMs = c.timeoutMs ?? 60_000;
  const r = await runBin(c.command, args, { cwd: dir, timeoutMs, input: c.input });
  const context = `case "${c.name}": gptmed-${c.command} ${args.join(' ')}\n`;
  assert.ok(!r.timedOut, `${context}did not finish within ${timeoutMs / 1000} s and was killed\nstderr:\n${r.stderr.slice(-2000)}`);
  assert.equal(r.status, c.exit, `${context}exit status ${r.status}${r.signal ? ` (signal ${r.signal})` : ''}, expected ${c.exit}\nstderr:\n${r.stderr.slice(-2000)}`);
  if (c.message !== null) assertOneErrorLine(c.command, r.stderr, c.message, context);
  else assert.ok(!/internal error|^\s+at /m.test(r.stderr), `${context}stderr:\n${r.stderr}`);
  const outputs = c.outputs ?? [];
  const allowed = (rel: string): boolean => outputs.some((o) => rel === o || (o.endsWith('/') && rel.startsWith(o)) || rel.startsWith(`${o}/`));
  const problems = losses(before, snapshot(dir), path.basename(dir), allowed);
  kept.forEach((k, i) => problems.push(...losses(keptBefore[i], snapshot(k), k)));
  assert.deepEqual(problems, [], `${context}the user lost something:\n${problems.join('\n')}`);
  c.check?.(ctx, r);
  return r;
}

/**
 * Register a table of cases as node:test tests under the current describe(). `art()` gives the artefacts
 * built by the file's before() hook; `root()` the directory the case directories go in.
 */
export function registerCases(cases: readonly Case[], art: () => Artefacts, root: () => string): void {
  const names = new Set<string>();
  for (const c of cases) {
    const key = `${c.command}: ${c.name}`;
    assert.ok(!names.has(key), `two cases are named ${key}`);
    names.add(key);
    it(`gptmed-${c.command}: ${c.name}`, async () => {
      await runCase(c, art(), root());
    });
  }
}

/** A describe() whose cases run two at a time (each case is a child process). */
export function describeCases(title: string, fn: () => void): void {
  describe(title, { concurrency: 2 }, fn);
}

// ---------------------------------------------------------------------------------------------------------
// Small file builders

/** A NumPy .npy v1.0 file of a 2-D array (little-endian). */
export function npyBytes(descr: '<u2' | '<i4' | '<f4', shape: [number, number], data: ArrayBufferView): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape[0]}, ${shape[1]}), }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** Parse a copied meta.json, change it with `edit`, write it back. */
export function editJson(file: string, edit: (meta: Record<string, any>) => void): void {
  const meta = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
  edit(meta);
  fs.writeFileSync(file, `${JSON.stringify(meta, null, 2)}\n`);
}

/** Bytes that are not text (a fixed pseudo-random sequence, so a case is the same every run). */
export function binaryBytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
