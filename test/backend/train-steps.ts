/**
 * Trains a tiny GPT for N steps on the bytes of a real Q&A file, on the wasm backend as
 * initBackend sets it up, and prints {"loss", "backendLine"} as JSON: fast-kernels.test.ts runs it
 * with and without GPTMED_FAST_KERNELS=0 and compares the losses.
 * Usage: node --import tsx test/backend/train-steps.ts <steps>
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { GPT } from '../../src/model/gpt.js';
import type { Batch } from '../../src/train/data.js';
import { AdamW } from '../../src/train/optimizer.js';
import { TrainStep } from '../../src/train/step.js';
import { fixturesDir } from '../helpers.js';

const steps = Number(process.argv[2] ?? 50);
const rows = 4, T = 32;
const info = await initBackend('wasm');
const bytes = fs.readFileSync(path.join(fixturesDir, 'backend', 'python-faq-head.qa.txt'));
const model = new GPT({ vocabSize: 256, dModel: 32, nLayers: 2, nHeads: 4, dFf: 64, maxSeqLen: T, dropout: 0 }, { seed: 7 });
const step = new TrainStep(model, new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 }), 1.0);
let loss = NaN;
for (let s = 0; s < steps; s++) {
  // Consecutive windows of the file: row r of step s starts at byte ((s * rows + r) * T) mod (file - T - 1).
  const x = new Int32Array(rows * T), y = new Int32Array(rows * T);
  for (let r = 0; r < rows; r++) {
    const start = ((s * rows + r) * T) % (bytes.length - T - 1);
    for (let t = 0; t < T; t++) {
      x[r * T + t] = bytes[start + t]!;
      y[r * T + t] = bytes[start + t + 1]!;
    }
  }
  const batch: Batch = { rows, T, x, y, weights: new Float32Array(rows * T).fill(1), targets: rows * T };
  loss = (await step.run([batch], 3e-3, `step-${s}`)).loss;
}
console.log(JSON.stringify({ loss, backendLine: info.line }));
