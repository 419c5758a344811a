/**
 * How long a job would train, before it starts: its steps (from the pair count, as gptmed-tokenize and
 * gptmed-train would make them) times its tokens per step, over tokens/s measured on this machine: the
 * last figure logged by a job of the same shape that ran here, else a few trainer steps measured now in a child
 * process (measure-child.ts; the server keeps answering meanwhile), kept for the server's life.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Device } from '../backend/index.js';
import { packageRoot } from '../common/paths.js';
import { countParameters, modelSizes, resolveModelConfig, type ModelConfig, type ModelShape, type ModelSize } from '../model/index.js';
import { resolveTrainConfig, type TrainConfig } from '../train/config.js';
import { ApiError } from './errors.js';
import type { JobConfig, JobKey } from './job-config.js';
import type { SpeedProbe } from '../train/speed.js';

export interface JobEstimate {
  parameters: number;
  steps: number;
  /** Tokens the model sees per optimizer step (batch x accumulation x row length - 1). */
  tokensPerStep: number;
  tokensPerSec: number;
  seconds: number;
  /** Where tokens/s comes from, in words. */
  basis: string;
}

/** A job's training run as the stages would set it up. */
export interface JobRun {
  modelConfig: ModelConfig;
  train: TrainConfig;
  /** Tokens a model sees per row: the row length (maxLength) minus one. */
  seqLen: number;
  trainSplit: number;
}

/** A measured pace, keyed by what decides it: the shape, the vocabulary, the batch and the row length. */
export function paceKey(run: { modelConfig: ModelConfig; train: { batchSize: number }; seqLen: number }): string {
  const m = run.modelConfig;
  return `d${m.dModel}-l${m.nLayers}-h${m.nHeads}-f${m.dFf}-v${m.vocabSize}-b${run.train.batchSize}-t${run.seqLen}`;
}

const shapeKeys = ['dModel', 'nLayers', 'nHeads', 'dFf', 'maxSeqLen', 'dropout'] as const;

/** The config's values over the stages' defaults; a setting the stages would refuse is a 400 naming it. */
export function jobRun(config: JobConfig, keys: Map<string, JobKey>, base?: ModelConfig): JobRun {
  const value = (key: string): unknown => config[key] ?? keys.get(key)?.default;
  const given: Partial<TrainConfig> = {};
  for (const [k, spec] of keys) if (spec.stages.includes('train') && config[k] !== undefined) (given as Record<string, unknown>)[k] = config[k];
  const overrides: Partial<ModelShape> = {};
  for (const k of shapeKeys) if (typeof config[k] === 'number') overrides[k] = config[k] as number;
  try {
    const train = resolveTrainConfig({ given, quickTest: config.quickTest === true });
    const modelSize = (config.modelSize ?? train.modelSize) as ModelSize;
    if (!modelSizes.includes(modelSize)) throw new Error(`modelSize must be one of ${modelSizes.join(', ')}`);
    // A fine-tune (initFrom) has its base model's shape and vocabulary.
    const modelConfig = base ?? resolveModelConfig({ modelSize, overrides, vocabSize: Number(value('vocabSize')) });
    const seqLen = Number(value('maxLength')) - 1;
    if (seqLen > modelConfig.maxSeqLen) {
      throw new Error(`maxLength ${seqLen + 1}: rows need a context of ${seqLen}, the model's maxSeqLen is ${modelConfig.maxSeqLen}; raise maxSeqLen or lower maxLength`);
    }
    return { modelConfig, train, seqLen, trainSplit: Number(value('trainSplit')) };
  } catch (err) {
    throw new ApiError(400, `config: ${(err as Error).message}`, 'config', 'invalid_request_error', 'invalid_config');
  }
}

/** Runs measure-child.ts and reads its one JSON line. */
function measureInChild(probe: SpeedProbe, device: Device): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = [path.join(packageRoot, 'dist', 'serve', 'measure-child.js'), JSON.stringify(probe), device];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve((JSON.parse(line) as { tokensPerSec: number }).tokensPerSec);
      else reject(new Error(`measuring the training speed failed (exit ${code}): ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}

export class Estimator {
  private readonly measured = new Map<string, Promise<number>>();

  /** `paces()`: tokens/s of jobs that ran here, by paceKey, with the job that measured each. */
  constructor(private readonly paces: () => Map<string, { tokensPerSec: number; job: string }>) {}

  async estimate(run: JobRun, pairs: number): Promise<JobEstimate> {
    const { train, seqLen } = run;
    const rows = Math.max(1, Math.round(pairs * run.trainSplit));
    const perEpoch = Math.ceil(Math.ceil(rows / train.batchSize) / train.gradAccum);
    const steps = Math.min(train.maxSteps ?? Number.POSITIVE_INFINITY, train.numEpochs * perEpoch);
    const tokensPerStep = train.batchSize * train.gradAccum * seqLen;
    const { tokensPerSec, basis } = await this.pace(run);
    return { parameters: countParameters(run.modelConfig), steps, tokensPerStep, tokensPerSec, seconds: Math.round((steps * tokensPerStep) / tokensPerSec), basis };
  }

  private async pace(run: JobRun): Promise<{ tokensPerSec: number; basis: string }> {
    const key = paceKey(run);
    const known = this.paces().get(key);
    if (known) return { tokensPerSec: known.tokensPerSec, basis: `tokens/s of job ${known.job} (same shape, batch and row length) on this machine` };
    let measuring = this.measured.get(key);
    if (!measuring) {
      const probe: SpeedProbe = { modelConfig: run.modelConfig, batchSize: run.train.batchSize, seqLen: run.seqLen, steps: 2, warmup: 1 };
      measuring = measureInChild(probe, run.train.device);
      measuring.catch(() => this.measured.delete(key)); // measure again next time
      this.measured.set(key, measuring);
    }
    try {
      return { tokensPerSec: await measuring, basis: 'measured on this machine: 2 training steps of this shape, batch and row length' };
    } catch (err) {
      throw new ApiError(500, (err as Error).message, null, 'server_error', 'measure_failed');
    }
  }
}
