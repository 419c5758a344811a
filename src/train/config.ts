/**
 * Training settings, declared once (trainSettings): defaults in configs/train.json, a --config file,
 * `--quick-test` values from configs/train.json, then the settings a caller gave. On resume the
 * checkpoint's settings replace the defaults, and a config file or flags given again still win.
 */
import * as fs from 'node:fs';
import { configPath } from '../common/paths.js';
import { checkSettings, pickSettings, readSettingsFile, SettingError, type Setting } from '../common/settings.js';
import { devices, type Device } from '../backend/index.js';
import { modelShapeSettings, modelSizes, type ModelShape, type ModelSize } from '../model/config.js';
import type { JsonObject } from '../model/checkpoint.js';
import { loraTargetNames, parseLoraTargets, type LoraConfig } from '../model/lora.js';

export interface TrainConfig {
  modelSize: ModelSize;
  numEpochs: number;
  /** Rows per micro-batch. */
  batchSize: number;
  learningRate: number;
  trainData: string;
  valData: string;
  checkpointDir: string;
  device: Device;
  seed: number;
  /** Stop after this many optimizer steps (null: run all epochs). */
  maxSteps: number | null;
  /** Micro-batches per optimizer step. */
  gradAccum: number;
  warmupSteps: number;
  minLr: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  /** Global gradient-norm clip (0: off). */
  gradClip: number;
  evalInterval: number;
  evalBatches: number;
  saveInterval: number;
  keepLast: number;
  /** Stop after this many evaluations without a better val loss (0: never). */
  earlyStoppingPatience: number;
  logInterval: number;
  /** Start a new run from this checkpoint's weights (null: random weights); resolved to its step directory. */
  initFrom: string | null;
  /** LoRA: train rank-r adapters on the frozen weights of initFrom's checkpoint (null: full training). */
  loraRank: number | null;
  /** The adapters' scale is loraAlpha / loraRank. */
  loraAlpha: number;
  /** Dropout on the adapters' input while training. */
  loraDropout: number;
  /** The linear layers adapted, comma-separated (src/model/lora.ts loraTargetNames). */
  loraTargets: string;
}

type QuickTest = Pick<TrainConfig, 'batchSize' | 'numEpochs' | 'maxSteps'>;

interface TrainDefaultsFile extends TrainConfig {
  quickTest: QuickTest;
}

/** Every training setting; the defaults are configs/train.json's (a file users read), not written here. */
export const trainSettings: readonly Setting[] = [
  { name: 'modelSize', type: 'string', choices: modelSizes, description: 'Model preset (configs/<size>.json)' },
  { name: 'trainData', type: 'path', description: 'Training shard (.npy from gptmed-tokenize, meta.json beside it)' },
  { name: 'valData', type: 'path', description: 'Validation shard' },
  { name: 'checkpointDir', type: 'path', description: 'Run directory: step-NNNNNN/, latest, best, tensorboard/, metrics.jsonl' },
  { name: 'numEpochs', type: 'integer', min: 1, description: 'Passes over the training data' },
  { name: 'maxSteps', type: 'integer', min: 1, nullable: true, description: 'Stop after this many optimizer steps' },
  { name: 'batchSize', type: 'integer', min: 1, description: 'Rows per micro-batch' },
  { name: 'gradAccum', type: 'integer', min: 1, description: 'Micro-batches per optimizer step' },
  { name: 'learningRate', type: 'number', above: 0, description: 'Peak learning rate (AdamW)' },
  { name: 'minLr', type: 'number', min: 0, description: 'Learning rate at the end of the cosine decay' },
  { name: 'warmupSteps', type: 'integer', min: 0, description: 'Linear warmup steps' },
  { name: 'weightDecay', type: 'number', min: 0, description: 'Decoupled weight decay on linear weight matrices' },
  { name: 'adamBeta1', type: 'number', min: 0, below: 1, flag: false, description: "AdamW's first-moment decay" },
  { name: 'adamBeta2', type: 'number', min: 0, below: 1, flag: false, description: "AdamW's second-moment decay" },
  { name: 'adamEps', type: 'number', min: 0, flag: false, description: "AdamW's epsilon" },
  { name: 'gradClip', type: 'number', min: 0, description: 'Clip gradients to this global norm (0: off)' },
  { name: 'evalInterval', type: 'integer', min: 1, description: 'Evaluate every N steps (and at each epoch end)' },
  { name: 'evalBatches', type: 'integer', min: 1, description: 'Validation batches per evaluation (at most)' },
  { name: 'saveInterval', type: 'integer', min: 1, description: 'Save a checkpoint every N steps (and at each epoch end)' },
  { name: 'keepLast', type: 'integer', min: 1, description: 'Step directories to keep (plus best)' },
  { name: 'earlyStoppingPatience', type: 'integer', min: 0, description: 'Stop after N evaluations without a better val loss (0: never)' },
  { name: 'logInterval', type: 'integer', min: 1, description: 'Print a loss line every N steps' },
  { name: 'device', type: 'string', choices: devices, description: 'Backend (see MANUAL "backends")' },
  { name: 'seed', type: 'integer', min: 0, description: 'Seed of the init, the data order and dropout' },
  {
    name: 'initFrom',
    type: 'path',
    nullable: true,
    description: "Start a new run from this checkpoint's weights (a step-NNNNNN directory, or a run directory: its best, else latest); the model's shape comes from it",
  },
  { name: 'loraRank', type: 'integer', min: 1, nullable: true, description: "LoRA: train rank-R adapters on --init-from's frozen weights (null: full training)" },
  { name: 'loraAlpha', type: 'number', above: 0, description: 'LoRA: the adapters are scaled by alpha / rank' },
  { name: 'loraDropout', type: 'number', min: 0, below: 1, description: "LoRA: dropout on the adapters' input while training" },
  { name: 'loraTargets', type: 'string', description: 'LoRA: the linear layers adapted, comma-separated (the default names all there are)' },
];

/** --quick-test: a source of settings (configs/train.json's quickTest), declared for the flag and the server. */
export const quickTestSetting: Setting = {
  name: 'quickTest',
  type: 'boolean',
  description: 'A short smoke run: batch 4, 1 epoch, at most 100 steps (configs/train.json quickTest)',
};

/** Every field of a TrainConfig, in a fixed order. */
export const trainConfigKeys = trainSettings.map((s) => s.name) as ReadonlyArray<keyof TrainConfig>;

/**
 * Check a complete config; `source` names where it came from (a file, or "training settings"). A bad
 * value the caller gave explicitly (a field in `given`) is a usage error (exit 2).
 */
export function validateTrainConfig(c: TrainConfig, source: string, given: ReadonlySet<string> = new Set()): TrainConfig {
  checkSettings(trainSettings, c, source, given);
  if (c.minLr > c.learningRate) {
    throw new SettingError(source, 'minLr', `at most learningRate (${c.learningRate})`, c.minLr, given.has('minLr'));
  }
  try {
    parseLoraTargets(c.loraTargets, 'loraTargets');
  } catch {
    const rule = `a comma-separated list of ${loraTargetNames.join(', ')} (each once)`;
    throw new SettingError(source, 'loraTargets', rule, c.loraTargets, given.has('loraTargets'));
  }
  return c;
}

/** The LoRA settings a run was given, as the adapters' config (null: full training). */
export function loraConfigOf(c: TrainConfig): LoraConfig | null {
  if (c.loraRank === null) return null;
  return { rank: c.loraRank, alpha: c.loraAlpha, dropout: c.loraDropout, targets: parseLoraTargets(c.loraTargets, 'loraTargets') };
}

function loadDefaultsFile(): TrainDefaultsFile {
  const file = configPath('train.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as TrainDefaultsFile;
}

/** The defaults in configs/train.json (for --help texts and for other stages, e.g. the checkpoint directory). */
export function trainDefaults(): TrainConfig {
  const { quickTest: _quickTest, ...defaults } = loadDefaultsFile();
  return validateTrainConfig(defaults, configPath('train.json'));
}

/**
 * The training settings of a --config file (checked). The file may also hold the model's shape fields
 * (src/model/config.ts reads those): a run directory's config.json is such a file.
 */
export function readTrainConfigFile(file: string): Partial<TrainConfig> {
  const read = readSettingsFile(file, trainSettings, modelShapeSettings.map((s) => s.name));
  return read as Partial<TrainConfig>;
}

/** The model fields of a --config file (checked; its training settings are passed over). */
export function readModelFields(file: string): Partial<ModelShape> {
  const read = readSettingsFile(file, modelShapeSettings, trainSettings.map((s) => s.name), 'model field');
  return read as Partial<ModelShape>;
}

export interface TrainConfigSources {
  /** Settings a previous run saved (resume); they replace the defaults. */
  saved?: JsonObject;
  /** A --config file: any training setting (and model fields, which are not read here). */
  configFile?: string;
  quickTest?: boolean;
  /** Only the settings the caller gave explicitly (flags). */
  given: Partial<TrainConfig>;
}

/** configs/train.json < saved run settings < the --config file < --quick-test < given settings. */
export function resolveTrainConfig(src: TrainConfigSources): TrainConfig {
  const { quickTest, ...defaults } = loadDefaultsFile();
  const saved = src.saved ? pickSettings<TrainConfig>(trainSettings, src.saved) : {};
  const fromFile = src.configFile ? readTrainConfigFile(src.configFile) : {};
  const given = pickSettings<TrainConfig>(trainSettings, src.given);
  const merged = { ...defaults, ...saved, ...fromFile, ...(src.quickTest ? quickTest : {}), ...given };
  return validateTrainConfig(merged, Object.keys(given).length ? 'training settings' : (src.configFile ?? configPath('train.json')), new Set(Object.keys(given)));
}

/** The config as plain JSON, for the checkpoint manifest. */
export function trainConfigJson(c: TrainConfig): JsonObject {
  return Object.fromEntries(trainConfigKeys.map((k) => [k, c[k]]));
}
