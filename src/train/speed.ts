/**
 * How fast the trainer runs a model shape on this machine: its own step (TrainStep: forward, backward,
 * clipping, AdamW) on random tokens, the batch split into micro-batches as gptmed-train splits it
 * (memory-fit.ts). The median of the timed steps counts. scripts/bench-train measures with it, and
 * gptmed-serve's run-time estimate when no job of that shape has run yet.
 */
import seedrandom from 'seedrandom';
import { fastMatMulStats, resetFastKernelCalls, sgemmGflops } from '../backend/fast-kernels.js';
import type { BackendInfo } from '../backend/index.js';
import { GPT, hasFusedCrossEntropy, type ModelConfig } from '../model/index.js';
import type { Batch } from './data.js';
import { microBatchPlan } from './memory-fit.js';
import { AdamW } from './optimizer.js';
import { TrainStep } from './step.js';

export interface SpeedProbe {
  /** Its maxSeqLen is raised to seqLen when shorter. */
  modelConfig: ModelConfig;
  batchSize: number;
  /** Tokens per row the model sees (a shard row's length minus one). */
  seqLen: number;
  /** Timed steps, after `warmup` untimed ones. */
  steps: number;
  warmup: number;
  /** 'auto' (default): as gptmed-train splits the batch; or a number of pieces. */
  microBatches?: 'auto' | number;
  /** Seed of the random tokens. */
  seed?: string;
  /** Also report the matrix products' share and rate, and time sgemm (a fraction of a second more). */
  matMulShare?: boolean;
}

export interface TrainingSpeed {
  tokensPerSec: number;
  /** Pieces each batch was split into. */
  microBatches: number;
  /** Where the native kernels ran: the matrix products' share of the timed steps and their rate, beside sgemm's. */
  matMul?: MatMulShare;
}

export interface MatMulShare {
  /** Of the timed steps' wall time. */
  share: number;
  gflops: number;
  /** The native sgemm on the step's MLP product ([positions, dModel] x [dModel, dFf]) in the same process. */
  sgemmGflops: number;
}

export async function measureTrainingSpeed(p: SpeedProbe, backend: Pick<BackendInfo, 'backend'>): Promise<TrainingSpeed> {
  const config: ModelConfig = { ...p.modelConfig, maxSeqLen: Math.max(p.modelConfig.maxSeqLen, p.seqLen) };
  const model = new GPT(config, { seed: 0 });
  const optimizer = new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 });
  try {
    const step = new TrainStep(model, optimizer, 1.0);
    const plan =
      p.microBatches === undefined || p.microBatches === 'auto'
        ? microBatchPlan(config, p.batchSize, p.seqLen, backend.backend, hasFusedCrossEntropy())
        : { pieces: p.microBatches, rows: p.batchSize / p.microBatches };
    if (!Number.isInteger(plan.rows) || plan.rows < 1) throw new Error(`batch ${p.batchSize} does not split into ${plan.pieces} micro-batches`);
    const rng = seedrandom(p.seed ?? 'speed');
    const n = plan.rows * p.seqLen;
    const tokens = (): Int32Array => Int32Array.from({ length: n }, () => Math.floor(rng() * config.vocabSize));
    const microBatches: Batch[] = Array.from({ length: plan.pieces }, () => ({
      rows: plan.rows, T: p.seqLen, x: tokens(), y: tokens(), weights: new Float32Array(n).fill(1), targets: n,
    }));
    const times: number[] = [];
    for (let i = 0; i < p.warmup + p.steps; i++) {
      if (i === p.warmup) resetFastKernelCalls();
      const t0 = performance.now();
      await step.run(microBatches, 3e-4, `speed-${i}`);
      if (i >= p.warmup) times.push((performance.now() - t0) / 1000);
    }
    const matMul = p.matMulShare ? matMulShare(times.reduce((a, b) => a + b, 0), plan.rows * p.seqLen, config) : undefined;
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    return { tokensPerSec: Math.round((p.batchSize * p.seqLen) / median), microBatches: plan.pieces, ...(matMul && { matMul }) };
  } finally {
    // Both: --device auto measures twice in the process that then trains.
    optimizer.dispose();
    model.dispose();
  }
}

/** The native products' share of `seconds` of timed steps (none where the native kernels did not run). */
function matMulShare(seconds: number, positions: number, config: ModelConfig): MatMulShare | undefined {
  const stats = fastMatMulStats();
  if (stats.calls === 0) return undefined;
  const sgemm = sgemmGflops(positions, config.dModel, config.dFf);
  if (sgemm === null) return undefined;
  return { share: stats.seconds / seconds, gflops: stats.flops / stats.seconds / 1e9, sgemmGflops: sgemm };
}
