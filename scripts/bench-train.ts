/**
 * Training speed and memory on the backend in use: tokens/s and peak RSS of
 * full training steps (forward, backward, clipping, AdamW) of the presets at
 * vocab 8000, random tokens (speed does not depend on them). Each
 * configuration runs in its own process, so its peak RSS is its own. A
 * configuration that runs out of memory is retried with gradient accumulation
 * (the same batch in 2, then 4 micro-batches), and the table says so.
 *   scripts/bench-train [--steps 3] [--device auto|gpu|cpu|wasm] [--only tiny-256x8,small-256x8,small-512x16]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { devices, initBackend, type Device } from '../src/backend/index.js';
import { GPT, loadPreset, type ModelSize } from '../src/model/index.js';
import type { Batch } from '../src/train/data.js';
import { AdamW } from '../src/train/optimizer.js';
import { TrainStep } from '../src/train/step.js';

interface BenchConfig {
  name: string;
  size: ModelSize;
  seqLen: number;
  batch: number;
}

interface Measurement {
  backend: string;
  parameters: number;
  tokensPerSec: number;
  peakRssMb: number;
  gradAccum: number;
}

const configs: BenchConfig[] = [
  { name: 'tiny-256x8', size: 'tiny', seqLen: 256, batch: 8 },
  { name: 'small-256x8', size: 'small', seqLen: 256, batch: 8 },
  { name: 'small-512x16', size: 'small', seqLen: 512, batch: 16 },
];
const vocabSize = 8000;

const args = yargs(hideBin(process.argv))
  .option('steps', { type: 'number', default: 3, describe: 'Timed steps per configuration (after one warm-up step)' })
  .option('device', { choices: devices, default: 'auto' as Device })
  .option('only', { type: 'string', describe: `Comma-separated subset of ${configs.map((c) => c.name).join(',')}` })
  .option('child', { type: 'string', hidden: true })
  .option('grad-accum', { type: 'number', default: 1, hidden: true })
  .strict()
  .parseSync();

/** Random batches of `rows` rows, `seqLen` positions each, every target counted. */
function randomBatches(n: number, rows: number, seqLen: number, rng: () => number): Batch[] {
  return Array.from({ length: n }, () => {
    const size = rows * seqLen;
    const x = Int32Array.from({ length: size }, () => Math.floor(rng() * vocabSize));
    const y = Int32Array.from({ length: size }, () => Math.floor(rng() * vocabSize));
    return { rows, T: seqLen, x, y, weights: new Float32Array(size).fill(1), targets: size };
  });
}

/** One configuration, in this process: prints a Measurement as JSON. */
async function measure(config: BenchConfig, steps: number, device: Device, gradAccum: number): Promise<Measurement> {
  const backend = await initBackend(device);
  const model = new GPT({ ...loadPreset(config.size), vocabSize, dropout: 0.1 }, { seed: 1 });
  const optimizer = new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 });
  const step = new TrainStep(model, optimizer, 1.0);
  const rng = seedrandom('bench-train');
  const micro = randomBatches(gradAccum, config.batch / gradAccum, config.seqLen, rng);
  step.run(micro, 1e-4, 'warmup');
  const t0 = performance.now();
  let tokens = 0;
  for (let i = 0; i < steps; i++) tokens += step.run(micro, 1e-4, `bench:${i}`).tokens;
  const seconds = (performance.now() - t0) / 1000;
  return {
    backend: backend.label,
    parameters: model.countParameters(),
    tokensPerSec: tokens / seconds,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    gradAccum,
  };
}

/** Run one configuration in a child process; retry with more micro-batches when it runs out of memory. */
function runIsolated(config: BenchConfig): Measurement | string {
  let failure = '';
  for (const gradAccum of [1, 2, 4]) {
    if (config.batch % gradAccum !== 0) continue;
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', config.name, '--steps', String(args.steps), '--device', args.device, '--grad-accum', String(gradAccum)],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
    );
    const last = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status === 0 && last.startsWith('{')) return JSON.parse(last) as Measurement;
    failure = (r.stderr.split('\n').find((l) => /memory|Abort|RangeError|out of bounds/i.test(l)) ?? `exit ${r.status}`).slice(0, 120);
  }
  return `failed: ${failure}`;
}

if (args.child) {
  const config = configs.find((c) => c.name === args.child)!;
  process.stdout.write(`${JSON.stringify(await measure(config, args.steps, args.device, args.gradAccum))}\n`);
} else {
  const chosen = args.only ? configs.filter((c) => args.only!.split(',').includes(c.name)) : configs;
  console.log(`bench-train: ${args.steps} timed steps per configuration after one warm-up, vocab ${vocabSize}, AdamW, dropout 0.1`);
  console.log('config          parameters   tokens/s   peak RSS   backend');
  // A reference measured in the same run (e.g. PyTorch on the same shapes) belongs beside each row: measure it
  // per config here and print tokens/s and the ratio in extra columns.
  for (const config of chosen) {
    const m = runIsolated(config);
    if (typeof m === 'string') {
      console.log(`${config.name.padEnd(15)} ${m}`);
      continue;
    }
    const accum = m.gradAccum > 1 ? ` (batch as ${m.gradAccum} micro-batches: it does not fit at once)` : '';
    console.log(
      `${config.name.padEnd(15)} ${m.parameters.toLocaleString('en-US').padStart(10)} ${m.tokensPerSec.toFixed(1).padStart(10)} ${`${m.peakRssMb.toFixed(0)} MB`.padStart(10)}   ${m.backend}${accum}`,
    );
  }
}
