/**
 * Fitting a training step into the wasm backend's heap. WebAssembly memory stops at 4 GiB, and tfjs keeps
 * every tensor of a step's forward and backward pass until the step ends, so a large batch overflows it
 * ("memory access out of bounds"). The trainer splits each batch into micro-batches (gradient accumulation:
 * the same loss and gradient, see step.ts) until the estimate below fits the budget.
 *
 * The estimate is a function of the model config and the batch shape only (so a run and its resume split
 * alike): float32 values live at the step's peak, measured as the wasm heap's size and the bytes allocated on
 * it (the larger) after two steps with the native kernels, dropout 0.1, over tiny/small/medium at T = 128..512,
 * and fitted (the formula is 7-25% above every measurement):
 *   10 per parameter (weights, gradients, AdamW moments, one parameter's update at a time)
 *   + per position: 3.5 x vocab (logits and their gradient)
 *     + per layer: 16 x dModel + 12 x dFf + 6 x nHeads x T (attention weights, their gradient and the scores')
 * Without the fused kernels (GPTMED_FAST_KERNELS=0, or no addon) the stock chains keep far more, as measured
 * before them (tf.profile's peakBytes):
 *   14 per parameter + per position: 11 x vocab + per layer: 60 x dModel + 24 x dFf + 18 x nHeads x T
 */
import { UserError } from '../common/errors.js';
import type { ModelConfig } from '../model/config.js';
import { countParameters } from '../model/gpt.js';

/** The wasm heap's hard limit, and the share of it a step may plan to use (the rest: fragmentation, data). */
export const wasmHeapBytes = 4 * 2 ** 30;
export const wasmStepBudgetBytes = 0.8 * wasmHeapBytes;

/**
 * Estimated peak bytes of one training step over `rows` rows of `T` positions (see the file comment); `fused`:
 * the backend has the fused native kernels (src/model/loss.ts hasFusedCrossEntropy says so).
 */
export function estimateStepBytes(c: ModelConfig, rows: number, T: number, fused: boolean): number {
  const [perParameter, perVocab, perDModel, perDFf, perScore] = fused ? [10, 3.5, 16, 12, 6] : [14, 11, 60, 24, 18];
  const perPosition = perVocab * c.vocabSize + c.nLayers * (perDModel * c.dModel + perDFf * c.dFf + perScore * c.nHeads * T);
  return 4 * (perParameter * countParameters(c) + rows * T * perPosition);
}

export interface MicroBatchPlan {
  /** Micro-batches each batch is split into (1: not split). */
  pieces: number;
  /** Rows per micro-batch. */
  rows: number;
  /** Estimated peak bytes of one micro-batch's step. */
  estimatedBytes: number;
}

/**
 * The fewest pieces (a divisor of `batchSize`) whose micro-batch fits the wasm heap's budget; on other
 * backends (no such cap) the batch stays whole. When even single rows do not fit, one row per piece: the
 * run then fails with the out-of-memory message, which names what to change.
 */
export function microBatchPlan(c: ModelConfig, batchSize: number, T: number, backend: string, fused: boolean): MicroBatchPlan {
  const whole = { pieces: 1, rows: batchSize, estimatedBytes: estimateStepBytes(c, batchSize, T, fused) };
  if (backend !== 'wasm') return whole;
  for (let pieces = 1; pieces <= batchSize; pieces++) {
    if (batchSize % pieces !== 0) continue;
    const rows = batchSize / pieces;
    const estimatedBytes = estimateStepBytes(c, rows, T, fused);
    if (estimatedBytes <= wasmStepBudgetBytes) return { pieces, rows, estimatedBytes };
  }
  return { pieces: batchSize, rows: 1, estimatedBytes: estimateStepBytes(c, 1, T, fused) };
}

/**
 * Whether `err` is the wasm heap running out. tfjs's wasm module reports it as a trap ("memory access out of
 * bounds"), as a failed allocation, or as a bare Emscripten abort ("Aborted()": its malloc aborts when the heap
 * cannot grow), not as a JavaScript out-of-memory error.
 */
export function isWasmOutOfMemory(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // WebAssembly.RuntimeError: by name, since the DOM-less typings here do not declare the class.
  if (err.name === 'RuntimeError') return /memory access out of bounds|^Aborted\(|out of memory|OOM/i.test(err.message);
  return err instanceof RangeError && /WebAssembly\.Memory|Array buffer allocation failed/i.test(err.message);
}

/** The one line a user gets for it, naming what to change. */
export function outOfMemoryError(plan: MicroBatchPlan, T: number, config: { batchSize: number; gradAccum: number }): UserError {
  const smaller = Math.max(1, Math.floor(plan.rows / 2));
  // Fewer rows per micro-batch helps only while there are rows to take away.
  const fewerRows = plan.rows > 1
    ? `use a smaller --batch-size with more --grad-accum (e.g. --batch-size ${smaller} --grad-accum ${config.gradAccum * Math.ceil(config.batchSize / smaller)}: the same effective batch), `
    : '';
  return new UserError(
    `out of memory: a micro-batch of ${plan.rows} row${plan.rows === 1 ? '' : 's'} x ${T} positions does not fit the wasm backend's 4 GB heap (nothing was saved); ` +
      `${fewerRows}shorter rows (gptmed-tokenize --max-length), or a smaller model`,
  );
}
