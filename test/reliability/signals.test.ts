/**
 * Ctrl-C (SIGINT) and SIGTERM in the middle of the commands that write outputs (issue 10, item 12):
 * convert (a large generated CSV), train-tokenizer, tokenize (a large Q&A file) and train. Each must exit
 * non-zero (130 after a clean stop: src/common/errors.ts Interrupted; 143 is accepted for SIGTERM), end
 * stderr with one line saying so (`gptmed-<cmd>: error: ... interrupted`; gptmed-train's own line says it
 * stopped and saved), and leave no hidden temporary and no partial output; a pre-existing output given
 * with --force survives intact (gptmed-train: the checkpoint it saves is complete and `latest` names it, and
 * the user's other files in the run directory stay).
 *
 * The signal is sent once the command is visibly at work (its hidden temporary exists, or it printed its
 * first progress or step line), or after a fixed wait at most; every wait is bounded, and a command that
 * does not end after the signal is killed with SIGKILL, so no test hangs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { referenceDir, repoRoot, tempDir } from '../helpers.js';
import { assertOneErrorLine, binPath, buildArtefacts, firstPairs, isTemporary, losses, snapshot, tinyTrainFlags, type Artefacts, type Command } from './harness.js';

let art: Artefacts;
let bigCsv: string;
let bigQa: string;

interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** Whether the signal reached the command while it was still working. */
  sentMidRun: boolean;
  /** Why the signal was sent: what was seen, or "waited". */
  trigger: string;
}

/**
 * Start `gptmed-<command>`, wait (polling) until `ready(stderr)` holds or `maxWaitMs` passed, send `signal`,
 * then wait at most `exitWaitMs` for it to end (SIGKILL after that).
 */
function interrupt(command: Command, args: string[], cwd: string, signal: NodeJS.Signals, ready: (stderr: string) => boolean, opts: { maxWaitMs?: number; exitWaitMs?: number } = {}): Promise<Outcome> {
  const child = spawn(process.execPath, [binPath(command), ...args], { cwd, env: { ...process.env, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let exited = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.resume();
  const exit = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (status, sig) => {
      exited = true;
      resolve({ status, signal: sig });
    });
  });
  return new Promise((resolve) => {
    const start = Date.now();
    let sentMidRun = false;
    let trigger = '';
    const poll = setInterval(() => {
      if (exited) {
        clearInterval(poll);
        return;
      }
      const isReady = ready(stderr);
      if (!isReady && Date.now() - start < (opts.maxWaitMs ?? 30_000)) return;
      clearInterval(poll);
      trigger = isReady ? 'seen at work' : 'waited';
      sentMidRun = child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), opts.exitWaitMs ?? 60_000);
      void exit.then(() => clearTimeout(killer));
    }, 20);
    void exit.then(({ status, signal: sig }) => {
      clearInterval(poll);
      resolve({ status, signal: sig, stderr, sentMidRun, trigger });
    });
  });
}

const hasTemporary = (dir: string): boolean => fs.readdirSync(dir).some((n) => isTemporary(n));

/** The checks every interrupted command shares. */
function assertInterrupted(command: Command, o: Outcome, signal: NodeJS.Signals, line: RegExp): void {
  assert.ok(o.sentMidRun, `the command ended before it could be interrupted (give it more work); stderr:\n${o.stderr}`);
  const allowed = signal === 'SIGINT' ? [130] : [130, 143];
  assert.ok(o.status !== null && allowed.includes(o.status), `exit status ${o.status}${o.signal ? ` (killed by ${o.signal})` : ''}, expected ${allowed.join(' or ')}; stderr:\n${o.stderr.slice(-2000)}`);
  assertOneErrorLine(command, o.stderr, line);
}

interface SignalCase {
  command: Command;
  /** Writes the user's pre-existing files into `dir`; returns the arguments. */
  setup: (dir: string) => string[];
  /** True once the command is at work (given its directory and its stderr so far). */
  ready: (dir: string, stderr: string) => boolean;
  /** The stop line's message (after `gptmed-<cmd>: error: `). */
  line: (signal: NodeJS.Signals) => RegExp;
  /** Paths a clean stop may create (gptmed-train's saved checkpoint). */
  outputs?: (rel: string) => boolean;
  check?: (dir: string) => void;
}

const interruptedLine = (): RegExp => /interrupted$/;

const signalCases: SignalCase[] = [
  {
    command: 'convert',
    setup: (dir) => {
      fs.writeFileSync(path.join(dir, 'out.qa.txt'), 'Q: my old output\nA: keep it\n');
      return [bigCsv, '-o', 'out.qa.txt', '--force'];
    },
    ready: (dir) => hasTemporary(dir),
    line: interruptedLine,
  },
  {
    command: 'train-tokenizer',
    setup: (dir) => {
      fs.mkdirSync(path.join(dir, 'tok'));
      fs.copyFileSync(art.tokenizer, path.join(dir, 'tok', 'q.model'));
      fs.copyFileSync(art.vocab, path.join(dir, 'tok', 'q.vocab'));
      return ['--input', path.join(repoRoot, 'data', 'sample.qa.txt'), '--output-prefix', 'tok/q', '--vocab-size', '3000', '--force'];
    },
    // Its first progress line: training has begun.
    ready: (_dir, stderr) => /train-tokenizer\s/.test(stderr),
    line: interruptedLine,
  },
  {
    command: 'tokenize',
    setup: (dir) => {
      fs.cpSync(art.shards, path.join(dir, 'out'), { recursive: true });
      return ['--input', bigQa, '--tokenizer', art.tokenizer, '--output-dir', 'out', '--max-length', '64', '--force'];
    },
    ready: (dir) => hasTemporary(dir),
    line: interruptedLine,
  },
  {
    command: 'train',
    setup: (dir) => {
      fs.mkdirSync(path.join(dir, 'ckpt'));
      fs.writeFileSync(path.join(dir, 'ckpt', 'notes.txt'), 'my notes on this run\n');
      return [
        ...tinyTrainFlags,
        '--train-data',
        path.join(art.shards, 'train.npy'),
        '--val-data',
        path.join(art.shards, 'val.npy'),
        '--checkpoint-dir',
        'ckpt',
        '--max-steps',
        '100000',
        '--log-interval',
        '1',
        '--eval-interval',
        '100000',
        '--save-interval',
        '100000',
        '--eval-batches',
        '1',
      ];
    },
    // Its first step line: a step is done.
    ready: (_dir, stderr) => /^step \d+/m.test(stderr),
    line: (signal) => new RegExp(`^stopped by ${signal} at step \\d+; checkpoint saved in ckpt; continue with --resume`),
    // The checkpoint a clean stop saves, its pointers and logs: a run's own files.
    outputs: (rel) => /^ckpt\/(step-\d+(\/.*)?|latest|best|metrics\.jsonl|tokenizer\.model|config\.json|tensorboard(\/.*)?)$/.test(rel),
    check: (dir) => {
      const latest = fs.readFileSync(path.join(dir, 'ckpt', 'latest'), 'utf8').trim();
      assert.match(latest, /^step-\d+$/);
      assert.ok(fs.existsSync(path.join(dir, 'ckpt', latest, 'manifest.json')), `latest names ${latest}, which has no manifest.json`);
    },
  },
];

describe('SIGINT and SIGTERM in the middle of a run', { concurrency: 2 }, () => {
  before(() => {
    art = buildArtefacts('shards');
    const dir = tempDir('gptmed-reliability-signals-');
    // Real pairs, repeated with a number so no two rows are equal: about 40 MB of CSV, about 12 MB of Q&A.
    const pairs = ['python-faq.qa.txt', 'debian-faq.qa.txt', 'bsdgames-quiz.qa.txt'].flatMap((f) =>
      firstPairs(path.join(referenceDir, f), 100_000)
        .split(/\n\n+/)
        .filter((b) => b.startsWith('Q:'))
        .map((b) => {
          const [q, ...a] = b.split('\nA:');
          return { q: q.slice(2).trim(), a: a.join('\nA:').trim() };
        }),
    );
    const csvQuote = (s: string): string => `"${s.replace(/"/g, '""')}"`;
    bigCsv = path.join(dir, 'big.csv');
    const csv = fs.openSync(bigCsv, 'w');
    fs.writeSync(csv, 'question,answer\n');
    let bytes = 0;
    for (let round = 0; bytes < 40e6; round++) {
      const chunk = pairs.map((p) => `${csvQuote(`${p.q} (${round})`)},${csvQuote(p.a)}\n`).join('');
      fs.writeSync(csv, chunk);
      bytes += chunk.length;
    }
    fs.closeSync(csv);
    bigQa = path.join(dir, 'big.qa.txt');
    const qa = fs.openSync(bigQa, 'w');
    bytes = 0;
    for (let round = 0; bytes < 12e6; round++) {
      const chunk = pairs.map((p) => `Q: ${p.q} (${round})\nA: ${p.a}\n\n`).join('');
      fs.writeSync(qa, chunk);
      bytes += chunk.length;
    }
    fs.closeSync(qa);
  });

  for (const c of signalCases) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      it(`gptmed-${c.command}: ${signal} mid-run`, async () => {
        const dir = tempDir('gptmed-reliability-signal-');
        const args = c.setup(dir);
        const before = snapshot(dir);
        const o = await interrupt(c.command, args, dir, signal, (stderr) => c.ready(dir, stderr));
        const context = `gptmed-${c.command} ${args.join(' ')} (${signal} sent: ${o.trigger})\n`;
        // Whatever the exit, what the user had must be there, and nothing half-written: both are reported.
        const failures: string[] = [];
        try {
          assertInterrupted(c.command, o, signal, c.line(signal));
        } catch (err) {
          failures.push((err as Error).message);
        }
        const problems = losses(before, snapshot(dir), path.basename(dir), c.outputs);
        if (problems.length > 0) failures.push(`the user lost something:\n${problems.join('\n')}`);
        if (failures.length === 0 && c.check) c.check(dir);
        assert.equal(failures.length, 0, `${context}${failures.join('\n\n')}`);
      });
    }
  }
});
