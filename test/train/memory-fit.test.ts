/** Fitting a step into the wasm heap: the estimate bounds a real step's peak, and the split it picks. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { initBackend } from '../../src/backend/index.js';
import { GPT, hasFusedCrossEntropy, loadPreset, type ModelConfig } from '../../src/model/index.js';
import type { Batch } from '../../src/train/data.js';
import { estimateStepBytes, isWasmOutOfMemory, microBatchPlan, outOfMemoryError, wasmStepBudgetBytes } from '../../src/train/memory-fit.js';
import { AdamW } from '../../src/train/optimizer.js';
import { TrainStep } from '../../src/train/step.js';

const small: ModelConfig = { ...loadPreset('small'), vocabSize: 8000 };
const medium: ModelConfig = { ...loadPreset('medium'), vocabSize: 8000 };

/**
 * Bytes of tensors on the wasm heap at the peak of `body`: those live before it (no two share memory between
 * steps) plus the most its allocations added. The backend makes and frees every tensor's memory through the
 * module's _malloc and _free, so counting those sees what tfjs's own byte count cannot (tensors sharing memory
 * count once).
 */
async function peakTensorBytes(body: () => Promise<unknown>): Promise<number> {
  const wasm = (tf.backend() as unknown as { wasm: { _malloc(n: number): number; _free(p: number): void } }).wasm;
  const { _malloc: malloc, _free: free } = wasm;
  const sizes = new Map<number, number>();
  let live = tf.memory().numBytes, peak = live;
  wasm._malloc = (n) => {
    const p = malloc(n);
    sizes.set(p, n);
    live += n;
    peak = Math.max(peak, live);
    return p;
  };
  wasm._free = (p) => {
    live -= sizes.get(p) ?? 0;
    sizes.delete(p);
    free(p);
  };
  try {
    await body();
  } finally {
    wasm._malloc = malloc;
    wasm._free = free;
  }
  return peak;
}

describe('memory fit', () => {
  it('the estimate bounds the measured peak of a real training step on wasm, within 40%', async () => {
    await initBackend('wasm');
    const config: ModelConfig = { ...loadPreset('tiny'), vocabSize: 2000, maxSeqLen: 128, dropout: 0.1 };
    const rows = 4, T = 128;
    const model = new GPT(config, { seed: 1 });
    const optimizer = new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 });
    const step = new TrainStep(model, optimizer, 1);
    const rng = seedrandom('memory-fit');
    const tokens = (): Int32Array => Int32Array.from({ length: rows * T }, () => Math.floor(rng() * config.vocabSize));
    const batch: Batch = { rows, T, x: tokens(), y: tokens(), weights: new Float32Array(rows * T).fill(1), targets: rows * T };
    await step.run([batch], 1e-3, 'first'); // AdamW's moments exist from here on, as in every later step
    const before = tf.memory().numBytes;
    const measured = await peakTensorBytes(() => step.run([batch], 1e-3, 'second'));
    const estimate = estimateStepBytes(config, rows, T, hasFusedCrossEntropy());
    optimizer.dispose();
    model.dispose();
    assert.ok(before > 0 && measured > before, `peak ${measured}, before ${before}`);
    assert.ok(estimate >= measured, `estimate ${estimate} below the measured peak ${measured}`);
    assert.ok(estimate <= 1.4 * measured, `estimate ${estimate} far above the measured peak ${measured}`);
  });

  it('small at 512 x 16 on wasm splits into 2 micro-batches of 8; other backends keep the batch whole', () => {
    const plan = microBatchPlan(small, 16, 511, 'wasm', true);
    assert.deepEqual([plan.pieces, plan.rows], [2, 8]);
    assert.ok(plan.estimatedBytes <= wasmStepBudgetBytes);
    assert.ok(estimateStepBytes(small, 16, 511, true) > wasmStepBudgetBytes, 'the whole batch would not fit');
    assert.deepEqual(microBatchPlan(small, 8, 256, 'wasm', true).pieces, 1);
    assert.equal(microBatchPlan(small, 16, 511, 'tensorflow', true).pieces, 1);
    // Without the fused kernels the step keeps more: never fewer pieces.
    assert.ok(microBatchPlan(small, 16, 511, 'wasm', false).pieces >= plan.pieces);
    // Only divisors of the batch: medium's 10 rows go as 5 x 2 (5 rows would not fit, 3 or 4 do not divide 10).
    const ten = microBatchPlan(medium, 10, 511, 'wasm', true);
    assert.deepEqual([ten.pieces, ten.rows], [5, 2]);
  });

  it('recognises the wasm heap overflow and words it as one line naming the flags', () => {
    const trap = new Error('memory access out of bounds');
    trap.name = 'RuntimeError';
    assert.ok(isWasmOutOfMemory(trap));
    const abort = new Error('Aborted(). Build with -sASSERTIONS for more info.');
    abort.name = 'RuntimeError';
    assert.ok(isWasmOutOfMemory(abort), "Emscripten's malloc aborts when the heap cannot grow");
    assert.ok(isWasmOutOfMemory(new RangeError('WebAssembly.Memory.grow(): Maximum memory size exceeded')));
    assert.ok(!isWasmOutOfMemory(new Error('memory access out of bounds')), 'a plain Error is not the trap');
    assert.ok(!isWasmOutOfMemory(new RangeError('Invalid array length')));
    const message = outOfMemoryError({ pieces: 1, rows: 16, estimatedBytes: 5e9 }, 511, { batchSize: 16, gradAccum: 1 }).message;
    assert.doesNotMatch(message, /\n/);
    assert.match(message, /micro-batch of 16 rows x 511 positions .* --batch-size 8 --grad-accum 2/);
    // Already one row per micro-batch: only shorter rows or a smaller model can help.
    assert.doesNotMatch(outOfMemoryError({ pieces: 2, rows: 1, estimatedBytes: 5e9 }, 511, { batchSize: 2, gradAccum: 1 }).message, /--batch-size/);
  });
});
