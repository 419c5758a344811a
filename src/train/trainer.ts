/**
 * The training run: data, model, optimizer, the loop with evaluation,
 * checkpoints, logs, and resume. Same seed, flags and data on the same
 * backend give the same loss curve step for step, and a resumed run continues
 * that curve exactly: the data order and dropout masks are functions of
 * (seed, epoch) and (seed, step), and a checkpoint holds the rest of the state.
 *
 * Read it top down: `train` takes the run directory; `startingPoint` finds the
 * resume point, or the checkpoint a new run takes its weights from (--init-from);
 * `prepareRun` checks the data, builds the model and optimizer; `trainLoop`
 * is the loop (batch, step, log, evaluate, save); `evaluate` and `save` are
 * what it calls at its intervals; `watchStopSignals` turns Ctrl-C into a
 * checkpoint and a stop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Interrupted, UsageError, UserError } from '../common/errors.js';
import { sha256File } from '../common/hash.js';
import { Progress, formatRate } from '../common/progress.js';
import { checkSetting, kebab } from '../common/settings.js';
import { initBackend, type BackendInfo, type BackendOptions } from '../backend/index.js';
import { META_FILE, type TokenRows } from '../dataset/shards.js';
import {
  checkpointWeights,
  manifestFile,
  modelFromCheckpoint,
  newTrainState,
  readLoraBase,
  readManifest,
  readTensors,
  type CheckpointManifest,
  type InitFrom,
  type JsonObject,
  type TrainState,
} from '../model/checkpoint.js';
import { modelShapeSettings, modelSizes, resolveModelConfig, type ModelConfig, type ModelShape, type ModelSize } from '../model/config.js';
import { GPT } from '../model/gpt.js';
import { countAdapterParameters, maxLoraRank, type LoraConfig, type LoraRecord } from '../model/lora.js';
import { hasFusedCrossEntropy } from '../model/loss.js';
import {
  abandonNewRun,
  checkpointTokenizerPath,
  keepTokenizerCopy,
  lockRunDir,
  metricsFile,
  pruneCheckpoints,
  readPointer,
  refuseExistingRun,
  removeStaleTemporaries,
  resolveCheckpoint,
  saveCheckpoint,
  setPreviousRunAside,
  settleReplacedRun,
  tensorboardDir,
  writePointer,
  writeRunConfig,
} from '../model/run-dir.js';
import { loraConfigOf, readModelFields, readTrainConfigFile, resolveTrainConfig, trainConfigJson, trainDefaults, type TrainConfig } from './config.js';
import { epochOrder, loadSplit, makeBatch, stepsPerEpoch, unigramBaseline, type Batch } from './data.js';
import { isWasmOutOfMemory, microBatchPlan, outOfMemoryError, wasmHeapBytes, type MicroBatchPlan } from './memory-fit.js';
import { MetricsLog } from './metrics.js';
import { AdamW } from './optimizer.js';
import { learningRateAt } from './schedule.js';
import { measureTrainingSpeed } from './speed.js';
import { NonFiniteLossError, TrainStep, evaluateLoss, type StepResult } from './step.js';
import { EventWriter } from './tensorboard.js';

export type { TrainState };

export interface TrainOptions {
  /** Settings the user gave (flags); the rest come from configs/train.json or the resumed checkpoint. */
  given: Partial<TrainConfig>;
  quickTest?: boolean;
  /**
   * A run config file (--config; a run's config.json is one): any training setting, between the defaults (or a
   * resumed run's saved settings) and `given`, and model fields on top of the preset, under `modelOverrides`.
   */
  modelConfigFile?: string;
  modelOverrides?: Partial<ModelShape>;
  /** Continue from `latest` in the checkpoint directory. */
  resume?: boolean;
  /** Continue from this checkpoint (a step directory or a run directory's latest). */
  resumeFrom?: string;
  /** Replace a run already in the checkpoint directory. */
  force?: boolean;
  /** Informational lines (the CLI prints them on stderr). */
  log?: (line: string) => void;
  /** No progress bar. */
  quiet?: boolean;
}

export interface TrainResult {
  runDir: string;
  backend: BackendInfo;
  steps: number;
  stoppedBy: 'completed' | 'early-stopping';
  bestValLoss: number | null;
  bestStep: number | null;
  lastValLoss: number | null;
  unigramBaseline: number;
  parameterCount: number;
}

interface ResumePoint {
  dir: string;
  manifest: CheckpointManifest;
  state: TrainState;
}

/** The checkpoint a new run takes its first weights from (initFrom), read whole before anything is written. */
interface InitSource {
  dir: string;
  manifest: CheckpointManifest;
  weights: Map<string, Float32Array>;
}

/**
 * The checkpoint `given` names (a step directory, or a run directory: its best, else latest), its weights
 * checked against their sha256. One in the run directory itself is refused: the new run would replace it.
 */
function readInitSource(given: string, runDir: string): InitSource {
  const dir = resolveCheckpoint(given, 'best', '--init-from');
  if (path.resolve(path.dirname(dir)) === path.resolve(runDir)) {
    throw new UserError(`${dir}: --init-from names a checkpoint of the run in --checkpoint-dir ${runDir}, which the new run would replace; choose another --checkpoint-dir`);
  }
  const manifest = readManifest(dir);
  // A LoRA run's checkpoint: its base with the adapters merged.
  return { dir, manifest, weights: checkpointWeights(dir, manifest) };
}

/** What a new run's manifests record of its source. */
const initFromRecord = (source: InitSource): InitFrom => ({ path: source.dir, step: source.manifest.step, sha256: source.manifest.weights.sha256 });

function readResumePoint(dir: string): ResumePoint {
  const manifest = readManifest(dir);
  if (!manifest.optimizer) throw new UserError(`${dir}: holds weights only (no optimizer state); it cannot be resumed, start a new run`);
  const s = manifest.trainState;
  const numbers: Array<keyof TrainState> = ['epoch', 'cursor', 'trainRows', 'seed', 'optimizerUpdates', 'tokensSeen', 'evalsWithoutImprovement'];
  for (const k of numbers) {
    if (typeof s[k] !== 'number') throw new UserError(`${path.join(dir, 'manifest.json')}: trainState.${k} is missing; the checkpoint cannot be resumed`);
  }
  return { dir, manifest, state: s };
}

function checkCompatible(train: TokenRows, val: TokenRows, trainPath: string, valPath: string): void {
  const a = train.meta;
  const b = val.meta;
  if (a.tokenizer.sha256 !== b.tokenizer.sha256 || a.vocabSize !== b.vocabSize || a.seqLen !== b.seqLen) {
    throw new UserError(`${valPath}: made with another tokenizer or row length than ${trainPath}; give shards from the same gptmed-tokenize run`);
  }
  if (train.rows === 0) throw new UserError(`${trainPath}: the training split has no rows; re-run gptmed-tokenize on a file with Q&A pairs or text`);
  if (val.rows === 0) throw new UserError(`${valPath}: the validation split has no rows; re-run gptmed-tokenize with a larger validation split`);
}

/**
 * The tokenizer meta.json names must still be the one the shards were made
 * with: a tokenizer retrained in place since would make a model whose ids
 * mean other pieces at generation. A tokenizer no longer there is only noted
 * (training does not read it; generation will ask for it).
 */
function checkShardsTokenizer(meta: TokenRows['meta'], trainPath: string, log: (line: string) => void): void {
  const { file, sha256 } = meta.tokenizer;
  if (!fs.existsSync(file)) {
    log(`note: ${file}, the tokenizer ${trainPath} was made with, is missing; gptmed-generate will need it (--tokenizer)`);
    return;
  }
  const now = sha256File(file);
  if (now !== sha256) {
    throw new UserError(
      `${file}: changed since ${trainPath} was made with it (sha256 now ${now.slice(0, 12)}, the shards say ${sha256.slice(0, 12)}); ` +
        're-run gptmed-tokenize with this tokenizer, or restore the one the shards were made with',
    );
  }
}

/** Everything the loop works with: made by `prepareRun`, closed by `closeRun`. */
interface Run {
  config: TrainConfig;
  runDir: string;
  log: (line: string) => void;
  backend: BackendInfo;
  meta: TokenRows['meta'];
  /** What manifests record as the tokenizer (keepTokenizerCopy). */
  tokenizer: CheckpointManifest['tokenizer'];
  /** The checkpoint the run's first weights came from (null: random ones); every manifest records it. */
  initFrom: InitFrom | null;
  /** A LoRA run's adapters and base (every manifest records it); null: full training. */
  lora: LoraRecord | null;
  trainRows: TokenRows;
  valBatches: Batch[];
  /** How each batch is split into micro-batches (wasm heap). */
  plan: MicroBatchPlan;
  unigramBaseline: number;
  totalSteps: number;
  model: GPT;
  optimizer: AdamW;
  trainStep: TrainStep;
  state: TrainState;
  /** The last step taken (the step a checkpoint is saved as). */
  step: number;
  startStep: number;
  metrics: MetricsLog;
  events: EventWriter;
  progress: Progress;
}

const fmt = (x: number | null, digits = 4): string => (x === null ? '-' : x.toFixed(digits));
const perplexity = (loss: number): number => Math.exp(loss);

/** Train (or continue training) a GPT; see MANUAL.md "train". */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  if (opts.given.initFrom && (opts.resume || opts.resumeFrom)) {
    throw new UsageError('--init-from starts a new run; it does not go with --resume or --resume-from (a resumed run keeps the weights it has)');
  }
  const from = opts.resumeFrom ? resolveCheckpoint(opts.resumeFrom, 'latest') : null;
  // --checkpoint-dir, else the config file's, else the directory --resume-from's checkpoint is in, else the default.
  const fileDir = opts.modelConfigFile ? readTrainConfigFile(opts.modelConfigFile).checkpointDir : undefined;
  const runDir = opts.given.checkpointDir ?? fileDir ?? (from ? path.dirname(from) : trainDefaults().checkpointDir);
  const release = lockRunDir(runDir);
  const newRun = { started: false };
  try {
    settleReplacedRun(runDir); // what a run killed before its first checkpoint left
    const run = await prepareRun(opts, startingPoint(opts, runDir, from), newRun);
    const stop = watchStopSignals(run.log);
    try {
      return finishRun(run, await trainLoop(run, stop));
    } finally {
      stop.dispose();
      closeRun(run);
    }
  } finally {
    // A new run that ends before its first checkpoint (out of memory, diverged, a full disk) keeps nothing,
    // and gives back the run it replaced: the advised retry needs no --force.
    if (newRun.started && !readPointer(runDir, 'latest')) abandonNewRun(runDir);
    release();
  }
}

/** Where a run starts: a checkpoint it resumes, or for a new run the checkpoint its weights come from (or none); its settings. */
interface Start {
  resumePoint: ResumePoint | null;
  source: InitSource | null;
  config: TrainConfig;
  /** A LoRA run's adapters and base (null: full training). */
  lora: LoraRecord | null;
}

/**
 * Where to start (the checkpoint `from`, the run's latest with --resume, else a new run, from initFrom's
 * weights or random ones) and the run's settings.
 */
function startingPoint(opts: TrainOptions, runDir: string, from: string | null): Start {
  let resumePoint: ResumePoint | null = null;
  if (from) {
    resumePoint = readResumePoint(from);
  } else if (opts.resume) {
    const latest = readPointer(runDir, 'latest');
    if (!latest) throw new UserError(`${runDir}: no checkpoint to resume (no "latest" pointer); start a run without --resume, or give --resume-from PATH`);
    resumePoint = readResumePoint(latest);
  }
  const config = resolveTrainConfig({ saved: resumePoint?.manifest.trainConfig, configFile: opts.modelConfigFile, quickTest: opts.quickTest, given: opts.given });
  config.checkpointDir = runDir; // the directory read and locked, even where a resumed run's saved setting differs
  if (resumePoint) {
    // A resumed run keeps the record of where its first weights came from, whatever a --config file says.
    const saved = resumePoint.manifest.trainConfig.initFrom;
    config.initFrom = typeof saved === 'string' ? saved : null;
    return { resumePoint, source: null, config, lora: resumedLora(config, resumePoint) };
  }
  refuseLoraWithoutInit(opts, config);
  const source = config.initFrom === null ? null : readInitSource(config.initFrom, runDir);
  if (source) {
    // The step directory itself: a rerun from config.json starts from the same weights.
    config.initFrom = source.dir;
    const size = source.manifest.trainConfig.modelSize;
    if (modelSizes.includes(size as ModelSize)) config.modelSize = size as ModelSize;
  }
  return { resumePoint, source, config, lora: source && newLora(opts, config, source) };
}

const loraFields = ['loraRank', 'loraAlpha', 'loraDropout', 'loraTargets'] as const;

/** LoRA adapts a trained model: LoRA flags (or a config file's loraRank) without --init-from are refused, as are adapter flags without a rank. */
function refuseLoraWithoutInit(opts: TrainOptions, config: TrainConfig): void {
  const flags = loraFields.filter((k) => opts.given[k] !== undefined && opts.given[k] !== null).map((k) => `--${kebab(k)}`);
  if (config.initFrom === null && (flags.length > 0 || config.loraRank !== null)) {
    const what = flags.length > 0 ? flags.join(', ') : `loraRank ${config.loraRank} (${opts.modelConfigFile})`;
    throw new UsageError(`${what}: LoRA trains adapters on a trained model's frozen weights; give the model with --init-from CHECKPOINT`);
  }
  if (config.loraRank === null && flags.length > 0) {
    throw new UsageError(`${flags.join(', ')}: LoRA settings without --lora-rank; give --lora-rank R to train adapters (without it the run trains every weight)`);
  }
}

/** A new LoRA run's adapters and the record of its base (`source`); the rank must fit every target layer. */
function newLora(opts: TrainOptions, config: TrainConfig, source: InitSource): LoraRecord | null {
  const lora = loraConfigOf(config);
  if (!lora) return null;
  const max = maxLoraRank(source.manifest.modelConfig, lora.targets);
  if (lora.rank > max) {
    const err = `--lora-rank ${lora.rank}: larger than the smallest adapted layer of ${source.dir} (min(in, out) = ${max} for ${lora.targets.join(',')}); give at most ${max}`;
    throw opts.given.loraRank !== undefined ? new UsageError(err) : new UserError(err);
  }
  return { ...lora, base: { ...initFromRecord(source), path: path.resolve(source.dir) } };
}

/** A resumed run keeps its adapters' settings (the manifest's), whatever flags or a --config file say; its base is checked when read. */
function resumedLora(config: TrainConfig, resumePoint: ResumePoint): LoraRecord | null {
  const lora = resumePoint.manifest.lora ?? null;
  config.loraRank = lora?.rank ?? null;
  if (lora) Object.assign(config, { loraAlpha: lora.alpha, loraDropout: lora.dropout, loraTargets: lora.targets.join(',') });
  return lora;
}

/**
 * Everything before the first step: the data and its checks, the model's shape, the backend, the run
 * directory's files, the model and optimizer (fresh, from `start.source`'s weights, or from `start.resumePoint`),
 * the logs. `newRun.started` is set once a new run starts writing its directory.
 */
async function prepareRun(opts: TrainOptions, start: Start, newRun: { started: boolean }): Promise<Run> {
  const { resumePoint, source, config } = start;
  const log = opts.log ?? (() => {});
  const runDir = config.checkpointDir;
  if (!resumePoint) refuseExistingRun(runDir, opts.force ?? false);
  const { trainRows, valRows } = loadData(config, start, log);
  const meta = trainRows.meta;
  const modelConfig = chooseModelConfig(opts, config, start, meta, log);

  const backend = await initBackend(config.device, { measure: speedOfRun(modelConfig, config, meta.seqLen - 1) });
  log(backend.line);
  // Batches split into micro-batches where the wasm heap needs it: a function of the config, so a resume splits alike.
  const plan = microBatchPlan(modelConfig, config.batchSize, meta.seqLen - 1, backend.backend, hasFusedCrossEntropy());
  // Refused before anything is allocated or written: such a model would fail only minutes into building it.
  if (backend.backend === 'wasm' && plan.estimatedBytes > wasmHeapBytes) throw outOfMemoryError(plan, meta.seqLen - 1, config);

  if (resumePoint) {
    removeStaleTemporaries(runDir);
  } else {
    setPreviousRunAside(runDir);
    newRun.started = true;
  }
  const tokenizer = keepTokenizerCopy(runDir, meta.tokenizer);
  // A resume rewrites it only where its settings differ (a raised --max-steps): it always says how the run goes on.
  writeRunConfig(runDir, runSettings(config, modelConfig));
  const { model, optimizer, state, step } = modelAndState(config, modelConfig, start, trainRows.rows);
  const lora = start.lora;
  const initFrom = resumePoint ? (resumePoint.manifest.initFrom ?? null) : source && initFromRecord(source);

  const perEpoch = stepsPerEpoch(trainRows.rows, config.batchSize, config.gradAccum);
  const totalSteps = Math.min(config.maxSteps ?? Number.POSITIVE_INFINITY, config.numEpochs * perEpoch);
  const baseline = unigramBaseline(trainRows, valRows);
  const valBatches = validationBatches(valRows, config, plan.rows);
  const metrics = new MetricsLog(path.join(runDir, metricsFile), resumePoint ? step : null);
  const events = new EventWriter(path.join(runDir, tensorboardDir));
  const progress = new Progress({ label: 'train', total: totalSteps - step, unit: 'steps', quiet: opts.quiet });
  const trainStep = new TrainStep(model, optimizer, config.gradClip);
  const run: Run = {
    config, runDir, log, backend, meta, tokenizer, initFrom, lora, trainRows, valBatches, plan, unigramBaseline: baseline, totalSteps,
    model, optimizer, trainStep, state, step, startStep: step, metrics, events, progress,
  };
  announceRun(run, start, valRows.rows, perEpoch);
  if (resumePoint) events.sessionStart(step + 1);
  metrics.write({ type: 'start', step, backend: backend.label, parameters: model.countParameters(), resumedFrom: resumePoint?.dir ?? null, initFrom: initFrom?.path ?? null, unigramBaseline: baseline, totalSteps });
  return run;
}

/**
 * For --device auto on a machine with a hardware WebGPU adapter: the run's model and rows (at most 4 of them, to
 * keep it to seconds), 1 untimed and 2 timed steps on a backend.
 */
function speedOfRun(modelConfig: ModelConfig, config: TrainConfig, seqLen: number): BackendOptions['measure'] {
  const probe = { modelConfig: { ...modelConfig, dropout: 0 }, batchSize: Math.min(config.batchSize, 4), seqLen, steps: 2, warmup: 1 };
  return async (backend) => (await measureTrainingSpeed(probe, { backend })).tokensPerSec;
}

/** The lines that say what the run is about to do: the model and where it comes from, the data, the baseline. */
function announceRun(run: Run, start: Start, valRows: number, perEpoch: number): void {
  const { config, log, model, meta, plan, trainRows, state, step } = run;
  const m = model.config;
  if (plan.pieces > 1) {
    log(`batch ${config.batchSize} split into ${plan.pieces} micro-batches of ${plan.rows} to fit the wasm heap (same result; see MANUAL.md "Memory on wasm")`);
  }
  const origin = start.resumePoint ? 'resumed' : start.source ? `from ${start.source.dir}` : config.modelSize;
  log(
    `model: ${origin} dModel ${m.dModel}, ${m.nLayers} layers, ${m.nHeads} heads, ` +
      `dFf ${m.dFf}, context ${m.maxSeqLen}, vocab ${m.vocabSize}: ${model.countParameters().toLocaleString('en-US')} parameters`,
  );
  log(
    `data: ${trainRows.rows} train rows, ${valRows} val rows of ${meta.seqLen} tokens${trainRows.mask ? ' (loss on answer tokens only)' : ''}; ` +
      `${perEpoch} steps per epoch (batch ${config.batchSize} x ${config.gradAccum} accumulated), ${run.totalSteps} steps in all`,
  );
  const baseline = run.unigramBaseline;
  log(`unigram baseline: val loss ${baseline.toFixed(4)} (perplexity ${perplexity(baseline).toFixed(1)}): a model must get below this to have learned anything`);
  if (start.resumePoint) log(`resuming from ${start.resumePoint.dir} at step ${step} (epoch ${state.epoch + 1}, best val loss ${fmt(state.bestValLoss)})`);
  if (start.source) {
    const i = initFromRecord(start.source);
    log(`initialised from ${i.path} (step ${i.step}, weights sha256 ${i.sha256.slice(0, 12)}): a new run at step 0, fresh optimizer and schedule`);
  }
  if (run.lora) log(loraLine(run.lora, m, model.countParameters()));
}

const size = (bytes: number): string => (bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`);

/** What a LoRA run trains and keeps, against the full model. */
function loraLine(lora: LoraRecord, m: ModelConfig, total: number): string {
  const n = countAdapterParameters(m, lora);
  return (
    `LoRA: rank ${lora.rank}, alpha ${lora.alpha}, dropout ${lora.dropout} on ${lora.targets.join(',')}: ${n.toLocaleString('en-US')} trainable parameters ` +
    `(${((100 * n) / total).toFixed(2)}% of ${total.toLocaleString('en-US')}); adapters ${size(4 * n)} per checkpoint against the base's weights.bin ${size(4 * total)} ` +
    `(the base, ${lora.base.path}, stays frozen and is not copied)`
  );
}

/** trainRows 0: a model brought in by gptmed-import, not yet trained on any shards here; it takes the ones given. */
const isImported = (p: ResumePoint): boolean => p.state.trainRows === 0;

/** The training and validation splits, checked against each other, their tokenizer, and the run resumed or the checkpoint started from. */
function loadData(config: TrainConfig, start: Start, log: (line: string) => void): { trainRows: TokenRows; valRows: TokenRows } {
  const { resumePoint, source } = start;
  const { data: trainRows, files: trainFiles } = loadSplit(config.trainData);
  const { data: valRows } = loadSplit(config.valData);
  checkCompatible(trainRows, valRows, config.trainData, config.valData);
  const meta = trainRows.meta;
  checkShardsTokenizer(meta, config.trainData, log);
  if (resumePoint) {
    const m = resumePoint.manifest;
    if (m.tokenizer.sha256 !== meta.tokenizer.sha256) {
      throw new UserError(
        `${config.trainData}: made with tokenizer sha256 ${meta.tokenizer.sha256.slice(0, 12)}, but ${resumePoint.dir} was trained with ${m.tokenizer.sha256.slice(0, 12)} (${m.tokenizer.file}); ` +
          'give the shards the run was trained on',
      );
    }
    if (!isImported(resumePoint) && resumePoint.state.trainRows !== trainRows.rows) {
      throw new UserError(`${config.trainData}: ${trainRows.rows} rows, but the run was trained on ${resumePoint.state.trainRows}; give the same training data to resume`);
    }
  }
  if (source) checkInitTokenizer(config.trainData, meta, source);
  if (trainFiles.length > 1) log(`train data: ${trainFiles.length} shard files`);
  return { trainRows, valRows };
}

/**
 * The shards of a run started from a checkpoint must be made with the tokenizer it was trained with: the same
 * ids must mean the same pieces. Named by meta.json and manifest.json, the two files that record them.
 */
function checkInitTokenizer(trainData: string, meta: TokenRows['meta'], source: InitSource): void {
  const theirs = source.manifest.tokenizer;
  if (meta.tokenizer.sha256 === theirs.sha256) return;
  const tokenizerFile = checkpointTokenizerPath(source.dir, source.manifest) ?? theirs.source ?? theirs.file;
  throw new UserError(
    `${path.join(path.dirname(trainData), META_FILE)}: shards made with tokenizer sha256 ${meta.tokenizer.sha256.slice(0, 12)} (${meta.tokenizer.file}), ` +
      `but ${path.join(source.dir, manifestFile)} records ${theirs.sha256.slice(0, 12)}; --init-from needs shards made with the checkpoint's tokenizer: re-run gptmed-tokenize with --tokenizer ${tokenizerFile}`,
  );
}

/** The shape fields (all but dropout): with --init-from they are the checkpoint's. */
const shapeFields = ['dModel', 'nLayers', 'nHeads', 'dFf', 'maxSeqLen'] as const;

/**
 * The model of a run started from a checkpoint: its shape, with the dropout given (a flag, else the --config
 * file's, else the checkpoint's). Shape flags are refused; a --config file's shape fields must equal the
 * checkpoint's (a run's config.json does).
 */
function initModelConfig(opts: TrainOptions, source: InitSource): ModelConfig {
  const theirs = source.manifest.modelConfig;
  const overrides = opts.modelOverrides ?? {};
  const flags = [...(opts.given.modelSize !== undefined ? ['modelSize'] : []), ...shapeFields.filter((k) => overrides[k] !== undefined)];
  if (flags.length > 0) {
    throw new UsageError(
      `${flags.map((k) => `--${kebab(k)}`).join(', ')}: with --init-from the model's shape comes from the checkpoint (${source.dir}); leave shape flags out (--dropout may be set)`,
    );
  }
  const fromFile = opts.modelConfigFile ? readModelFields(opts.modelConfigFile) : {};
  const differ = shapeFields.filter((k) => fromFile[k] !== undefined && fromFile[k] !== theirs[k]);
  if (differ.length > 0) {
    throw new UserError(
      `${opts.modelConfigFile}: ${differ.map((k) => `${k} ${fromFile[k]}`).join(', ')}, but the model's shape comes from the checkpoint --init-from names ` +
        `(${source.dir}: ${differ.map((k) => `${k} ${theirs[k]}`).join(', ')}); remove ${differ.length > 1 ? 'these fields' : 'the field'} from the file`,
    );
  }
  if (overrides.dropout !== undefined) checkSetting(modelShapeSettings.find((s) => s.name === 'dropout')!, overrides.dropout, 'model settings', true);
  return { ...theirs, dropout: overrides.dropout ?? fromFile.dropout ?? theirs.dropout };
}

/**
 * The model's shape: the checkpoint's on resume or with --init-from, else the preset with --config and
 * overrides; checked against the shards.
 */
function chooseModelConfig(opts: TrainOptions, config: TrainConfig, start: Start, meta: TokenRows['meta'], log: (line: string) => void): ModelConfig {
  const { resumePoint, source } = start;
  let modelConfig: ModelConfig;
  if (source) {
    modelConfig = initModelConfig(opts, source);
  } else if (resumePoint) {
    modelConfig = resumePoint.manifest.modelConfig;
    if (opts.modelConfigFile || opts.given.modelSize || Object.keys(opts.modelOverrides ?? {}).length > 0) {
      log('note: resuming: the model configuration comes from the checkpoint; model flags and a --config file\'s model fields are ignored');
    }
  } else {
    modelConfig = resolveModelConfig({ modelSize: config.modelSize, configFile: opts.modelConfigFile, overrides: opts.modelOverrides, vocabSize: meta.vocabSize });
  }
  if (modelConfig.vocabSize !== meta.vocabSize) {
    throw new UserError(`${config.trainData}: vocabulary of ${meta.vocabSize} tokens, the model has ${modelConfig.vocabSize}; use shards made with the run's tokenizer`);
  }
  if (meta.seqLen - 1 > modelConfig.maxSeqLen) {
    // The context of the checkpoint --init-from names is fixed: only the rows can be shorter.
    const raise = source ? '' : 'raise maxSeqLen (--max-seq-len) or ';
    throw new UserError(`${config.trainData}: rows of ${meta.seqLen} tokens need a context of ${meta.seqLen - 1}, the model's maxSeqLen is ${modelConfig.maxSeqLen}; ${raise}tokenize with a smaller --max-length`);
  }
  return modelConfig;
}

/** The run's config.json: every training setting and the model's shape (its vocabulary comes from the shards). */
function runSettings(config: TrainConfig, m: ModelConfig): JsonObject {
  return { ...trainConfigJson(config), dModel: m.dModel, nLayers: m.nLayers, nHeads: m.nHeads, dFf: m.dFf, maxSeqLen: m.maxSeqLen, dropout: m.dropout };
}

/** The model, its optimizer and the run's state: fresh for a new run (its weights from initFrom's checkpoint, if any), as saved for a resumed one. */
function modelAndState(config: TrainConfig, modelConfig: ModelConfig, start: Start, trainRows: number): { model: GPT; optimizer: AdamW; state: TrainState; step: number } {
  const { resumePoint } = start;
  const model = startModel(config, modelConfig, start);
  // With LoRA the adapters only: no optimizer state for the frozen base.
  const optimizer = new AdamW(model.trainableParameters(), { beta1: config.adamBeta1, beta2: config.adamBeta2, eps: config.adamEps, weightDecay: config.weightDecay });
  if (!resumePoint) {
    return { model, optimizer, state: newTrainState(trainRows, config.seed), step: 0 };
  }
  // An imported model starts its data order with this run's seed.
  const state: TrainState = { ...resumePoint.state, ...(isImported(resumePoint) ? { trainRows, seed: config.seed } : {}) };
  optimizer.load(state.optimizerUpdates, readTensors(resumePoint.dir, resumePoint.manifest.optimizer!), resumePoint.dir);
  adoptRunBest(config.checkpointDir, state);
  return { model, optimizer, state, step: resumePoint.manifest.step };
}

/** The model a run starts with: random, initFrom's weights (with fresh adapters for LoRA), or the resumed checkpoint's (a LoRA run's base and adapters). */
function startModel(config: TrainConfig, modelConfig: ModelConfig, start: Start): GPT {
  const { resumePoint, source, lora } = start;
  const adapters = (weights?: Map<string, Float32Array>): { lora?: { config: LoraConfig; weights?: Map<string, Float32Array> } } =>
    lora ? { lora: { config: lora, weights } } : {};
  if (resumePoint) {
    const { dir, manifest } = resumePoint;
    if (!lora) return modelFromCheckpoint(dir, manifest);
    return new GPT(modelConfig, { weights: readLoraBase(lora, dir), ...adapters(readTensors(dir, manifest.weights)) });
  }
  if (source) return new GPT(modelConfig, { weights: source.weights, seed: config.seed, ...adapters() });
  return new GPT(modelConfig, { seed: config.seed });
}

/** The first evalBatches batches of the validation split, in micro-batches of `rows`: the same at every evaluation. */
function validationBatches(valRows: TokenRows, config: TrainConfig, rows: number): Batch[] {
  const valBatches: Batch[] = [];
  const valRowCount = Math.min(config.evalBatches * config.batchSize, valRows.rows);
  for (let start = 0; start < valRowCount; start += rows) {
    valBatches.push(makeBatch(valRows, Array.from({ length: Math.min(rows, valRowCount - start) }, (_, r) => start + r)));
  }
  if (valBatches.every((b) => b.targets === 0)) throw new UserError(`${config.valData}: no position counts as a loss target (all padding or prompt); check the shards`);
  return valBatches;
}

/** The training loop: one optimizer step per pass, evaluation and checkpoints at their intervals. */
async function trainLoop(run: Run, stop: StopSignals): Promise<TrainResult['stoppedBy']> {
  const { config, state, trainRows, totalSteps } = run;
  if (run.step >= totalSteps) run.log(`nothing to do: the run is at step ${run.step} of ${totalSteps}; raise --max-steps or --num-epochs to train further`);
  let order = epochOrder(trainRows.rows, state.seed, state.epoch);
  const window = { tokens: 0, start: performance.now() };
  while (run.step < totalSteps) {
    const epoch = state.epoch;
    const micro = nextBatch(run, order);
    run.step++;
    const lr = learningRateAt(run.step, { learningRate: config.learningRate, minLr: config.minLr, warmupSteps: config.warmupSteps, totalSteps });
    const { result, seconds } = await takeStep(run, micro, lr);
    state.tokensSeen += result.tokens;
    window.tokens += result.tokens;
    const epochEnded = state.cursor >= trainRows.rows;
    if (epochEnded) {
      state.epoch++;
      state.cursor = 0;
      order = epochOrder(trainRows.rows, state.seed, state.epoch);
    }
    logStep(run, epoch, lr, result, seconds, window);

    const evalDue = run.step % config.evalInterval === 0 || epochEnded || run.step === totalSteps;
    const { improved, earlyStop } = evalDue ? await evaluate(run) : { improved: false, earlyStop: false };
    if (run.step % config.saveInterval === 0 || epochEnded || run.step === totalSteps || improved || earlyStop || stop.received()) await save(run, improved);
    const signal = stop.received();
    if (signal) throw new Interrupted(`stopped by ${signal} at step ${run.step}; checkpoint saved in ${run.runDir}; continue with --resume`);
    if (earlyStop) {
      run.progress.log(`early stopping: no better val loss in ${config.earlyStoppingPatience} evaluations`);
      return 'early-stopping';
    }
    // Let signal handlers run between steps (on the CPU backends a step never yields to the event loop).
    await new Promise((resolve) => setImmediate(resolve));
  }
  return 'completed';
}

/** The next gradAccum batches of the epoch's `order` (fewer at its end), in micro-batches; moves the cursor. */
function nextBatch(run: Run, order: Uint32Array): Batch[] {
  const { config, state, trainRows, plan } = run;
  const micro: Batch[] = [];
  for (let a = 0; a < config.gradAccum && state.cursor < trainRows.rows; a++) {
    const end = Math.min(state.cursor + config.batchSize, trainRows.rows);
    for (let r = state.cursor; r < end; r += plan.rows) micro.push(makeBatch(trainRows, order.subarray(r, Math.min(r + plan.rows, end))));
    state.cursor = end;
  }
  return micro;
}

/** One optimizer step, timed; running out of wasm memory or diverging becomes a line that says what to do. */
async function takeStep(run: Run, micro: Batch[], lr: number): Promise<{ result: StepResult; seconds: number }> {
  const start = performance.now();
  try {
    const result = await run.trainStep.run(micro, lr, `${run.state.seed}:${run.step}`);
    return { result, seconds: (performance.now() - start) / 1000 };
  } catch (err) {
    if (isWasmOutOfMemory(err)) throw outOfMemory(run);
    if (!(err instanceof NonFiniteLossError)) throw err;
    throw divergedError(err, run.step, lr, run.config, readPointer(run.runDir, 'latest'));
  }
}

const outOfMemory = (run: Run): UserError => outOfMemoryError(run.plan, run.meta.seqLen - 1, run.config);

/** The step's metrics and TensorBoard scalars, a progress line every logInterval steps, the progress bar. */
function logStep(run: Run, epoch: number, lr: number, result: StepResult, seconds: number, window: { tokens: number; start: number }): void {
  const { step, totalSteps, state } = run;
  const tokensPerSec = result.tokens / seconds;
  // `tensors`: live tfjs tensors after the step; flat over steps, or something leaks.
  const tensors = tf.memory().numTensors;
  run.metrics.write({ type: 'train', step, epoch: epoch + 1, loss: result.loss, lr, gradNorm: result.gradNorm, tokensPerSec, tokensSeen: state.tokensSeen, tensors });
  run.events.scalars(step, { 'train/loss': result.loss, 'train/learning_rate': lr, 'train/grad_norm': result.gradNorm, 'train/tokens_per_sec': tokensPerSec });
  if (step % run.config.logInterval === 0 || step === totalSteps) {
    const rate = window.tokens / ((performance.now() - window.start) / 1000);
    run.progress.log(
      `step ${step}/${totalSteps}  epoch ${epoch + 1}  loss ${result.loss.toFixed(4)}  lr ${lr.toExponential(2)}  grad norm ${result.gradNorm.toFixed(3)}  ${formatRate(rate)} tok/s`,
    );
    window.tokens = 0;
    window.start = performance.now();
  }
  run.progress.update(step - run.startStep, { step: `${step}/${totalSteps}`, epoch: epoch + 1, loss: result.loss.toFixed(4), lr: lr.toExponential(2), 'tok/s': formatRate(tokensPerSec) });
}

/** Validation loss now; whether it is the run's best, and whether early stopping's patience ran out. */
async function evaluate(run: Run): Promise<{ improved: boolean; earlyStop: boolean }> {
  const { state, config, step } = run;
  let valLoss: number;
  try {
    valLoss = await evaluateLoss(run.model, run.valBatches);
  } catch (err) {
    throw isWasmOutOfMemory(err) ? outOfMemory(run) : err;
  }
  state.lastValLoss = valLoss;
  const improved = state.bestValLoss === null || valLoss < state.bestValLoss;
  let earlyStop = false;
  if (improved) {
    state.bestValLoss = valLoss;
    state.bestStep = step;
    state.evalsWithoutImprovement = 0;
  } else {
    state.evalsWithoutImprovement++;
    earlyStop = config.earlyStoppingPatience > 0 && state.evalsWithoutImprovement >= config.earlyStoppingPatience;
  }
  const baseline = run.unigramBaseline;
  run.metrics.write({ type: 'eval', step, valLoss, perplexity: perplexity(valLoss), bestValLoss: state.bestValLoss, unigramBaseline: baseline });
  run.events.scalars(step, { 'val/loss': valLoss, 'val/perplexity': perplexity(valLoss) });
  run.progress.log(
    `eval step ${step}: val loss ${valLoss.toFixed(4)} (perplexity ${perplexity(valLoss).toFixed(2)})  unigram baseline ${baseline.toFixed(4)}  ` +
      `best ${fmt(state.bestValLoss)} at step ${state.bestStep}${improved ? ' (new best)' : ''}`,
  );
  return { improved, earlyStop };
}

/** Save the step as a checkpoint, point `latest` (and `best`) at it, and keep the last keepLast. */
async function save(run: Run, isBest: boolean): Promise<void> {
  const { runDir, state, meta } = run;
  const opt = await run.optimizer.state();
  state.optimizerUpdates = opt.updates;
  const fields = {
    step: run.step,
    tokenizer: run.tokenizer,
    specialIds: meta.specialIds,
    seqLen: meta.seqLen,
    trainConfig: trainConfigJson(run.config),
    trainState: { ...state },
    ...(run.initFrom ? { initFrom: run.initFrom } : {}),
    ...(run.lora ? { lora: run.lora } : {}),
    backend: run.backend.label,
  };
  const dir = await saveCheckpoint(runDir, run.model, fields, opt.arrays);
  writePointer(runDir, 'latest', dir);
  if (isBest) writePointer(runDir, 'best', dir);
  settleReplacedRun(runDir); // the first checkpoint is in place: a run it replaced (--force) goes
  pruneCheckpoints(runDir, run.config.keepLast);
}

/** The run's result, after the last step. */
function finishRun(run: Run, stoppedBy: TrainResult['stoppedBy']): TrainResult {
  const { step, state } = run;
  run.progress.finish({ step: `${step}/${run.totalSteps}` });
  run.metrics.write({ type: 'stop', step, reason: stoppedBy, bestValLoss: state.bestValLoss, bestStep: state.bestStep });
  return {
    runDir: run.runDir,
    backend: run.backend,
    steps: step,
    stoppedBy,
    bestValLoss: state.bestValLoss,
    bestStep: state.bestStep,
    lastValLoss: state.lastValLoss,
    unigramBaseline: run.unigramBaseline,
    parameterCount: run.model.countParameters(),
  };
}

function closeRun(run: Run): void {
  run.metrics.close();
  run.events.close();
  run.optimizer.dispose();
  run.model.dispose();
}

interface StopSignals {
  /** The SIGINT or SIGTERM received, if any. */
  received: () => NodeJS.Signals | null;
  dispose: () => void;
}

/**
 * Ctrl-C (SIGINT) or SIGTERM while training: the first asks the loop for a
 * checkpoint after the current step, then a stop; a second while saving stops
 * at once (every write is atomic, nothing is left half-written).
 */
function watchStopSignals(log: (line: string) => void): StopSignals {
  let stopSignal: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal) process.exit(130);
    stopSignal = signal;
    log(`${signal}: saving a checkpoint after this step, then stopping (send it again to stop at once)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    received: () => stopSignal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * The line for a loss that became NaN or infinite, with advice that works: a
 * run with a checkpoint continues from it with a lower learning rate (a flag
 * given with --resume wins over the saved one); a run without one was removed
 * (as after running out of memory), so the same command with a lower rate
 * starts it again.
 */
function divergedError(err: NonFiniteLossError, step: number, lr: number, config: TrainConfig, last: string | null): UserError {
  const lowerLr = config.learningRate / 10;
  // The end of the decay may not sit above the peak (config.ts): lowered too where it would.
  const lower = `${lowerLr.toExponential(1)}${config.minLr > lowerLr ? ` --min-lr ${(lowerLr / 10).toExponential(1)}` : ''}`;
  const what = `training diverged at step ${step}: ${err.message} (learning rate ${lr.toExponential(2)}); stopped without saving`;
  return new UserError(
    last
      ? `${what}. The last good checkpoint is ${last}: continue from it with --resume --checkpoint-dir ${config.checkpointDir} --learning-rate ${lower}`
      : `${what}, before the first checkpoint (nothing was kept); run again with a lower --learning-rate, e.g. --learning-rate ${lower}`,
  );
}

/**
 * A resumed run must not replace `best` with a worse model: when the run
 * directory's best checkpoint is better than the state being resumed (e.g.
 * resuming an older step), keep it as the mark to beat.
 */
function adoptRunBest(runDir: string, state: TrainState): void {
  const bestDir = readPointer(runDir, 'best');
  if (!bestDir) return;
  const s = readManifest(bestDir).trainState;
  const bestLoss = typeof s.bestValLoss === 'number' ? s.bestValLoss : null;
  if (bestLoss !== null && (state.bestValLoss === null || bestLoss < state.bestValLoss)) {
    state.bestValLoss = bestLoss;
    state.bestStep = typeof s.bestStep === 'number' ? s.bestStep : null;
  }
}
