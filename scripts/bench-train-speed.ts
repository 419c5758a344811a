/**
 * Training speed of gptmed's trainer step (TrainStep + AdamW, gradient clipping, no dropout) on random
 * tokens, and with --vs-torch the same GPT in PyTorch (../shared/bench/torch_reference.py, run with
 * /usr/bin/python3; needs python3-torch and libopenblas0-pthread) in the same run. Every measurement
 * runs in its own process so that its peak RSS is its own; engines alternate within each repeat,
 * and the ratio of each repeat's pair is printed with the range over repeats.
 *   scripts/bench-train-speed [--sizes tiny small] [--seq 256] [--batch 8] [--micro-batches 1] [--steps 5] [--repeats 2] [--vs-torch]
 *   e.g. peak RSS at seq 512, batch 16: --sizes small --seq 512 --batch 16 --micro-batches 2 --vs-torch
 * GPTMED_FAST_KERNELS=0 measures the stock wasm kernels instead of the native ones.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { devices, initBackend, type Device } from '../src/backend/index.js';
import { GPT, loadPreset, modelSizes, type ModelSize } from '../src/model/index.js';
import type { Batch } from '../src/train/data.js';
import { AdamW } from '../src/train/optimizer.js';
import { TrainStep } from '../src/train/step.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const torchScript = path.resolve(repoRoot, '..', 'shared', 'bench', 'torch_reference.py');

const args = yargs(hideBin(process.argv))
  .option('sizes', { type: 'array', choices: modelSizes, default: ['tiny', 'small'] as ModelSize[] })
  .option('vocab-size', { type: 'number', default: 8000 })
  .option('seq', { type: 'number', default: 256 })
  .option('batch', { type: 'number', default: 8 })
  .option('steps', { type: 'number', default: 5, describe: 'timed steps (the median counts)' })
  .option('warmup', { type: 'number', default: 2 })
  .option('micro-batches', { type: 'number', default: 1, describe: 'split each batch (gradient accumulation): the wasm heap stops at 4 GB' })
  .option('repeats', { type: 'number', default: 2 })
  .option('vs-torch', { type: 'boolean', default: false, describe: 'also run torch_reference.py and print ratios' })
  .option('device', { choices: devices, default: 'wasm' as Device })
  .option('child', { type: 'string', hidden: true, describe: 'measure this size in this process' })
  .strict()
  .parseSync();

interface Measurement {
  engine: string;
  tokens_per_s: number;
  peak_rss_mb: number;
}

/** One process, one size: time the trainer's step and report tokens/s and peak RSS. */
async function measureHere(size: ModelSize): Promise<Measurement> {
  const backend = await initBackend(args.device);
  const model = new GPT({ ...loadPreset(size), vocabSize: args.vocabSize, maxSeqLen: Math.max(512, args.seq), dropout: 0 }, { seed: 0 });
  const step = new TrainStep(model, new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 }), 1.0);
  const rng = seedrandom('bench-train-speed');
  const n = args.batch * args.seq;
  const rows = args.batch / args.microBatches;
  if (!Number.isInteger(rows)) throw new Error(`--batch ${args.batch} does not split into ${args.microBatches} micro-batches`);
  const tokens = (): Int32Array => Int32Array.from({ length: rows * args.seq }, () => Math.floor(rng() * args.vocabSize));
  const microBatches: Batch[] = Array.from({ length: args.microBatches }, () => ({
    rows, T: args.seq, x: tokens(), y: tokens(), weights: new Float32Array(rows * args.seq).fill(1), targets: rows * args.seq,
  }));
  const times: number[] = [];
  for (let i = 0; i < args.warmup + args.steps; i++) {
    const t0 = performance.now();
    step.run(microBatches, 3e-4, `bench-${i}`);
    if (i >= args.warmup) times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  return {
    engine: `gptmed ${backend.line.replace(/^backend: /, '')}`,
    tokens_per_s: Math.round(n / median),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

function lastJsonLine(stdout: string, what: string): Measurement {
  const line = stdout.trim().split('\n').at(-1);
  if (!line) throw new Error(`${what} printed nothing`);
  return JSON.parse(line) as Measurement;
}

function runGptmed(size: ModelSize): Measurement {
  const forwarded = ['--seq', args.seq, '--batch', args.batch, '--micro-batches', args.microBatches, '--steps', args.steps, '--warmup', args.warmup, '--vocab-size', args.vocabSize, '--device', args.device].map(String);
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', size, ...forwarded], { encoding: 'utf8', cwd: repoRoot });
  if (r.status !== 0) throw new Error(`gptmed measurement failed: ${r.stderr.trim().split('\n').at(-1)}`);
  return lastJsonLine(r.stdout, 'gptmed measurement');
}

function runTorch(size: ModelSize): Measurement {
  const r = spawnSync('/usr/bin/python3', [torchScript, '--size', size, '--vocab', String(args.vocabSize), '--seq', String(args.seq),
    '--batch', String(args.batch), '--steps', String(args.steps), '--warmup', String(args.warmup)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch_reference.py failed (needs python3-torch and libopenblas0-pthread): ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}`);
  const m = lastJsonLine(r.stdout, 'torch_reference.py') as Measurement & { threads: number; version: string };
  return { ...m, engine: `torch ${m.version}, ${m.threads} thread(s)` };
}

const range = (values: number[], digits = 0): string => {
  const lo = Math.min(...values), hi = Math.max(...values);
  return lo === hi ? lo.toFixed(digits) : `${lo.toFixed(digits)}-${hi.toFixed(digits)}`;
};

if (args.child) {
  console.log(JSON.stringify(await measureHere(args.child as ModelSize)));
  tf.engine().reset();
} else {
  const split = args.microBatches > 1 ? ` (gptmed: ${args.microBatches} micro-batches)` : '';
  console.log(`seq ${args.seq}, batch ${args.batch}${split}, vocab ${args.vocabSize}; median of ${args.steps} steps; ${args.repeats} repeats, engines alternating`);
  for (const size of args.sizes as ModelSize[]) {
    const ours: Measurement[] = [], torch: Measurement[] = [], ratios: number[] = [];
    for (let r = 0; r < args.repeats; r++) {
      // Alternate which engine goes first, so neither always meets the same background load.
      const order = r % 2 === 0 ? ['gptmed', 'torch'] : ['torch', 'gptmed'];
      for (const engine of order) {
        if (engine === 'gptmed') ours.push(runGptmed(size));
        else if (args.vsTorch) torch.push(runTorch(size));
      }
      if (args.vsTorch) ratios.push(ours.at(-1)!.tokens_per_s / torch.at(-1)!.tokens_per_s);
    }
    console.log(`${size}: ${ours[0]!.engine}: ${range(ours.map((m) => m.tokens_per_s))} tokens/s, peak RSS ${range(ours.map((m) => m.peak_rss_mb))} MB`);
    if (args.vsTorch) {
      console.log(`${size}: ${torch[0]!.engine}: ${range(torch.map((m) => m.tokens_per_s))} tokens/s, peak RSS ${range(torch.map((m) => m.peak_rss_mb))} MB`);
      const rss = ours.map((m, i) => m.peak_rss_mb / torch[i]!.peak_rss_mb);
      console.log(`${size}: ratio gptmed/torch tokens/s ${range(ratios, 2)}x (1.0x = parity; ${ratios.every((x) => x >= 0.5) ? 'at or above' : 'below'} the 0.5x milestone), peak RSS ${range(rss, 2)}x`);
    }
  }
}
