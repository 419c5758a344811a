/**
 * Fitting a training step into the wasm backend's heap. WebAssembly memory stops at 4 GiB, and tfjs keeps
 * every tensor of a step's forward and backward pass until the step ends, so a large batch overflows it
 * ("memory access out of bounds"). The trainer splits each batch into micro-batches (gradient accumulation:
 * the same loss and gradient, see step.ts) until the estimate below fits the budget.
 *
 * The estimate is a function of the model config and the batch shape only (so a run and its resume split
 * alike): float32 values live at the step's peak, measured with tf.profile's peakBytes on the wasm backend
 * with the native kernels, dropout 0.1, over tiny/small/medium-like shapes at T = 64..511, and fitted (within
 * 6%), then rounded up:
 *   14 per parameter (weights, gradients, AdamW moments and update temporaries)
 *   + per position: 4.2 x vocab (logits and their gradient; 11 without the fused cross-entropy kernel)
 *     + per layer: 60 x dModel + 24 x dFf + 18 x nHeads x T (attention scores and their gradients)
 */
import { UserError } from '../common/errors.js';
import type { ModelConfig } from '../model/config.js';
import { countParameters } from '../model/gpt.js';

/** The wasm heap's hard limit, and the share of it a step may plan to use (the rest: fragmentation, data). */
export const wasmHeapBytes = 4 * 2 ** 30;
export const wasmStepBudgetBytes = 0.8 * wasmHeapBytes;

/** Estimated peak bytes of one training step over `rows` rows of `T` positions (see the file comment). */
export function estimateStepBytes(c: ModelConfig, rows: number, T: number, fusedLoss: boolean): number {
  const perPosition = (fusedLoss ? 4.2 : 11) * c.vocabSize + c.nLayers * (60 * c.dModel + 24 * c.dFf + 18 * c.nHeads * T);
  return 4 * (14 * countParameters(c) + rows * T * perPosition);
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
export function microBatchPlan(c: ModelConfig, batchSize: number, T: number, backend: string, fusedLoss: boolean): MicroBatchPlan {
  const whole = { pieces: 1, rows: batchSize, estimatedBytes: estimateStepBytes(c, batchSize, T, fusedLoss) };
  if (backend !== 'wasm') return whole;
  for (let pieces = 1; pieces <= batchSize; pieces++) {
    if (batchSize % pieces !== 0) continue;
    const rows = batchSize / pieces;
    const estimatedBytes = estimateStepBytes(c, rows, T, fusedLoss);
    if (estimatedBytes <= wasmStepBudgetBytes) return { pieces, rows, estimatedBytes };
  }
  return { pieces: batchSize, rows: 1, estimatedBytes: estimateStepBytes(c, 1, T, fusedLoss) };
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
