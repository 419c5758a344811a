/**
 * Training speed and memory: tokens/s and peak RSS of gptmed's trainer step (TrainStep + AdamW, gradient
 * clipping) on random tokens, for tiny and small at seq 256 batch 8 and small at seq 512 batch 16 (issue 4),
 * on the backend in use. With --vs-torch, the same GPT in PyTorch (../shared/bench/torch_reference.py, run
 * with /usr/bin/python3; needs python3-torch and libopenblas0-pthread) on the same configurations in the same
 * run, with ratios (issue 6). Every measurement runs in its own process, so its peak RSS is its own; engines
 * alternate within each repeat, and ranges over repeats are printed.
 *   scripts/bench-train [--configs tiny-256x8,small-256x8,small-512x16] [--sizes tiny small] [--steps 5]
 *                       [--warmup 2] [--repeats 1] [--micro-batches auto|N] [--device auto] [--vs-torch]
 *   e.g. a quick check: scripts/bench-train --configs tiny-256x8 --steps 2 --warmup 1
 * --micro-batches auto splits a batch as gptmed-train does (src/train/memory-fit.ts); GPTMED_FAST_KERNELS=0
 * measures the stock wasm kernels instead of the native ones.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { devices, initBackend, type Device } from '../src/backend/index.js';
import { loadPreset, modelSizes, type ModelConfig, type ModelSize } from '../src/model/index.js';
import { measureTrainingSpeed } from '../src/train/speed.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface BenchConfig {
  name: string;
  size: ModelSize;
  seq: number;
  batch: number;
}

interface Measurement {
  engine: string;
  tokens_per_s: number;
  peak_rss_mb: number;
  /** gptmed only: pieces each batch was split into. */
  micro_batches?: number;
  /** gptmed with the native kernels: matrix products' share of the step, their GFLOP/s, sgemm's on the MLP's shape. */
  matmul_share?: number;
  matmul_gflops?: number;
  sgemm_gflops?: number;
}

function parseConfig(name: string): BenchConfig {
  const m = /^(\w+)-(\d+)x(\d+)$/.exec(name);
  if (!m || !(modelSizes as readonly string[]).includes(m[1]!)) throw new Error(`--configs: "${name}" is not SIZE-SEQxBATCH (e.g. small-512x16)`);
  return { name, size: m[1] as ModelSize, seq: Number(m[2]), batch: Number(m[3]) };
}

const args = yargs(hideBin(process.argv))
  .option('configs', { type: 'string', alias: 'only', default: 'tiny-256x8,small-256x8,small-512x16,medium-512x16', describe: 'comma-separated SIZE-SEQxBATCH' })
  .option('sizes', { type: 'array', choices: modelSizes, describe: 'keep only the configurations of these sizes' })
  .option('vocab-size', { type: 'number', default: 8000 })
  .option('dropout', { type: 'number', default: 0, describe: 'the PyTorch reference has none' })
  .option('steps', { type: 'number', default: 5, describe: 'timed steps (the median counts)' })
  .option('warmup', { type: 'number', default: 2, describe: 'untimed steps first' })
  .option('repeats', { type: 'number', default: 1, describe: 'measurements per engine and configuration' })
  .option('micro-batches', { type: 'string', default: 'auto', describe: "split each batch (gradient accumulation): 'auto' as gptmed-train does, or a number" })
  .option('device', { choices: devices, default: 'auto' as Device })
  .option('vs-torch', { type: 'boolean', default: false, describe: 'also run torch_reference.py and print ratios' })
  .option('torch-reference', { type: 'string', default: path.resolve(repoRoot, '..', 'shared', 'bench', 'torch_reference.py') })
  .option('child', { type: 'string', hidden: true, describe: 'measure this configuration in this process' })
  .strict()
  .parseSync();

/** One process, one configuration: time the trainer's step and report tokens/s and peak RSS. */
async function measureHere(config: BenchConfig): Promise<Measurement> {
  const backend = await initBackend(args.device);
  const modelConfig: ModelConfig = { ...loadPreset(config.size), vocabSize: args.vocabSize, dropout: args.dropout };
  const microBatches = args.microBatches === 'auto' ? 'auto' : Number(args.microBatches);
  const speed = await measureTrainingSpeed(
    { modelConfig, batchSize: config.batch, seqLen: config.seq, steps: args.steps, warmup: args.warmup, microBatches, seed: `bench-train:${config.name}`, matMulShare: true },
    backend,
  );
  return {
    // The backend's name and whether the native kernels run, without the reasons it was chosen.
    engine: `gptmed ${backend.line.replace(/^backend: (.*?) \(.*\)/, '$1')}`,
    tokens_per_s: speed.tokensPerSec,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    micro_batches: speed.microBatches,
    ...(speed.matMul && { matmul_share: speed.matMul.share, matmul_gflops: speed.matMul.gflops, sgemm_gflops: speed.matMul.sgemmGflops }),
  };
}

function lastJsonLine(stdout: string, what: string): Measurement {
  const line = stdout.trim().split('\n').at(-1);
  if (!line?.startsWith('{')) throw new Error(`${what} printed no result`);
  return JSON.parse(line) as Measurement;
}

/** The one line of a failed child worth showing (the wasm heap's overflow, an error message). */
function failureLine(stderr: string, status: number | null): string {
  const lines = stderr.split('\n');
  return (lines.find((l) => /memory|Abort|RangeError|out of bounds|Error:/i.test(l)) ?? `exit ${status}`).trim().slice(0, 160);
}

function runGptmed(config: BenchConfig): Measurement | string {
  const forwarded = ['--steps', args.steps, '--warmup', args.warmup, '--vocab-size', args.vocabSize, '--dropout', args.dropout,
    '--micro-batches', args.microBatches, '--device', args.device].map(String);
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', config.name, ...forwarded],
    { encoding: 'utf8', cwd: repoRoot, maxBuffer: 16 << 20 });
  if (r.status !== 0) return `failed: ${failureLine(r.stderr, r.status)}`;
  return lastJsonLine(r.stdout, 'gptmed measurement');
}

function runTorch(config: BenchConfig): Measurement | string {
  const r = spawnSync('/usr/bin/python3', [args.torchReference, '--size', config.size, '--vocab', String(args.vocabSize), '--seq', String(config.seq),
    '--batch', String(config.batch), '--steps', String(args.steps), '--warmup', String(args.warmup)], { encoding: 'utf8' });
  if (r.status !== 0) return `failed (needs python3-torch and libopenblas0-pthread): ${failureLine(r.stderr || r.error?.message || '', r.status)}`;
  const m = lastJsonLine(r.stdout, args.torchReference) as Measurement & { threads: number; version: string };
  return { ...m, engine: `torch ${m.version}, ${m.threads} thread(s)` };
}

const range = (values: number[], digits = 0): string => {
  const lo = Math.min(...values), hi = Math.max(...values);
  return lo === hi ? lo.toFixed(digits) : `${lo.toFixed(digits)}-${hi.toFixed(digits)}`;
};

function report(label: string, results: Array<Measurement | string>): Measurement[] {
  const ok = results.filter((m): m is Measurement => typeof m !== 'string');
  for (const failure of results.filter((m): m is string => typeof m === 'string')) console.log(`${label}: ${failure}`);
  if (ok.length === 0) return ok;
  const split = ok[0]!.micro_batches && ok[0]!.micro_batches > 1 ? ` (as ${ok[0]!.micro_batches} micro-batches)` : '';
  console.log(`${label}: ${ok[0]!.engine}: ${range(ok.map((m) => m.tokens_per_s))} tokens/s${split}, peak RSS ${range(ok.map((m) => m.peak_rss_mb))} MB`);
  const products = ok.filter((m) => m.matmul_share !== undefined);
  if (products.length > 0) {
    console.log(`${label}: matrix products ${range(products.map((m) => 100 * m.matmul_share!))}% of the step at ${range(products.map((m) => m.matmul_gflops!))} GFLOP/s; ` +
      `sgemm on the MLP's product in the same process: ${range(products.map((m) => m.sgemm_gflops!))} GFLOP/s`);
  }
  return ok;
}

let configs = args.configs.split(',').map((s) => parseConfig(s.trim()));
if (args.sizes) configs = configs.filter((c) => (args.sizes as string[]).includes(c.size));

if (args.child) {
  console.log(JSON.stringify(await measureHere(parseConfig(args.child))));
} else {
  if (args.vsTorch && !fs.existsSync(args.torchReference)) throw new Error(`--vs-torch: ${args.torchReference} not found; give --torch-reference PATH`);
  console.log(`bench-train: vocab ${args.vocabSize}, dropout ${args.dropout}, AdamW + clipping, random tokens; median of ${args.steps} steps after ${args.warmup} warm-up; ` +
    `${args.repeats} repeat(s)${args.vsTorch ? ', engines alternating' : ''}`);
  for (const config of configs) {
    const ours: Array<Measurement | string> = [], torch: Array<Measurement | string> = [];
    for (let r = 0; r < args.repeats; r++) {
      // Alternate which engine goes first, so neither always meets the same background load.
      const order = r % 2 === 0 ? ['gptmed', 'torch'] : ['torch', 'gptmed'];
      for (const engine of order) {
        if (engine === 'gptmed') ours.push(runGptmed(config));
        else if (args.vsTorch) torch.push(runTorch(config));
      }
    }
    const label = `${config.name} (${config.size}, seq ${config.seq}, batch ${config.batch})`;
    report(label, ours);
    if (!args.vsTorch) continue;
    report(label, torch);
    // Ratios per repeat pair, where both engines succeeded.
    const pairs = ours.flatMap((m, i) => (typeof m !== 'string' && typeof torch[i] !== 'string' ? [[m, torch[i] as Measurement] as const] : []));
    if (pairs.length === 0) continue;
    const speed = pairs.map(([a, b]) => a.tokens_per_s / b.tokens_per_s);
    const rss = pairs.map(([a, b]) => a.peak_rss_mb / b.peak_rss_mb);
    // Issue 17's target is 1.5x PyTorch eager; parity and 0.5x were the milestones before it.
    const verdict = speed.every((x) => x >= 1.5) ? 'at or above the 1.5x target'
      : speed.every((x) => x >= 1) ? `at or above parity, ${range(speed.map((x) => Math.max(0, 1.5 - x)), 2)} short of 1.5x`
        : speed.every((x) => x >= 0.5) ? `at or above the 0.5x milestone, ${range(speed.map((x) => Math.max(0, 1 - x)), 2)} short of 1.0x` : 'below the 0.5x milestone';
    console.log(`${label}: ratio gptmed/torch: tokens/s ${range(speed, 2)}x (${verdict}), peak RSS ${range(rss, 2)}x`);
  }
}
