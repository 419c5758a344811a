/**
 * Training settings: defaults in configs/train.json, `--quick-test` values
 * from the same file, then the flags a user gave. On resume the checkpoint's
 * settings replace the defaults, and flags given again still win.
 */
import * as fs from 'node:fs';
import { UsageError, UserError } from '../common/errors.js';
import { configPath } from '../common/paths.js';
import { devices, type Device } from '../backend/index.js';
import { modelSizes, type ModelSize } from '../model/config.js';
import type { JsonObject } from '../model/checkpoint.js';

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
}

type QuickTest = Pick<TrainConfig, 'batchSize' | 'numEpochs' | 'maxSteps'>;

interface TrainDefaultsFile extends TrainConfig {
  quickTest: QuickTest;
}

const positiveInts = ['numEpochs', 'batchSize', 'gradAccum', 'evalInterval', 'evalBatches', 'saveInterval', 'keepLast', 'logInterval'] as const;
const nonNegativeInts = ['seed', 'warmupSteps', 'earlyStoppingPatience'] as const;
const nonNegativeNumbers = ['minLr', 'weightDecay', 'adamEps', 'gradClip'] as const;
const strings = ['trainData', 'valData', 'checkpointDir'] as const;

/** Every field of a TrainConfig, in a fixed order. */
export const trainConfigKeys: ReadonlyArray<keyof TrainConfig> = [
  'modelSize', 'numEpochs', 'batchSize', 'learningRate', 'trainData', 'valData', 'checkpointDir', 'device', 'seed',
  'maxSteps', 'gradAccum', 'warmupSteps', 'minLr', 'weightDecay', 'adamBeta1', 'adamBeta2', 'adamEps', 'gradClip',
  'evalInterval', 'evalBatches', 'saveInterval', 'keepLast', 'earlyStoppingPatience', 'logInterval',
];

/**
 * Check a complete config; `source` names where it came from (a file, or
 * "flags"). A bad value the user gave (`given`) is a usage error (exit 2).
 */
export function validateTrainConfig(c: TrainConfig, source: string, given: ReadonlySet<string> = new Set()): TrainConfig {
  const bad = (key: string, what: string): never => {
    const flag = key.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`);
    const message = `${source}: ${key} (--${flag}) must be ${what} (got ${String((c as unknown as Record<string, unknown>)[key])})`;
    throw given.has(key) ? new UsageError(message) : new UserError(message);
  };
  for (const k of trainConfigKeys) if ((c as unknown as Record<string, unknown>)[k] === undefined) bad(k, 'set');
  for (const k of positiveInts) if (!Number.isInteger(c[k]) || c[k] < 1) bad(k, 'a positive integer');
  for (const k of nonNegativeInts) if (!Number.isInteger(c[k]) || c[k] < 0) bad(k, 'a non-negative integer');
  for (const k of nonNegativeNumbers) if (typeof c[k] !== 'number' || !(c[k] >= 0)) bad(k, 'a number >= 0');
  for (const k of strings) if (typeof c[k] !== 'string' || c[k] === '') bad(k, 'a path');
  if (typeof c.learningRate !== 'number' || !(c.learningRate > 0)) bad('learningRate', 'a number > 0');
  if (c.minLr > c.learningRate) bad('minLr', `at most learningRate (${c.learningRate})`);
  for (const k of ['adamBeta1', 'adamBeta2'] as const) if (typeof c[k] !== 'number' || !(c[k] >= 0 && c[k] < 1)) bad(k, 'in [0, 1)');
  if (c.maxSteps !== null && (!Number.isInteger(c.maxSteps) || c.maxSteps < 1)) bad('maxSteps', 'a positive integer or null');
  if (!(modelSizes as readonly string[]).includes(c.modelSize)) bad('modelSize', `one of ${modelSizes.join(', ')}`);
  if (!(devices as readonly string[]).includes(c.device)) bad('device', `one of ${devices.join(', ')}`);
  return c;
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

export interface TrainConfigSources {
  /** Settings a previous run saved (resume); they replace the defaults. */
  saved?: JsonObject;
  quickTest?: boolean;
  /** Only the settings the user gave explicitly. */
  given: Partial<TrainConfig>;
}

/** defaults < saved run settings < --quick-test < given flags. */
export function resolveTrainConfig(src: TrainConfigSources): TrainConfig {
  const file = loadDefaultsFile();
  const { quickTest, ...defaults } = file;
  const saved: Partial<TrainConfig> = {};
  for (const k of trainConfigKeys) {
    if (src.saved && k in src.saved) (saved as Record<string, unknown>)[k] = src.saved[k];
  }
  const given = Object.fromEntries(Object.entries(src.given).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
  const merged = { ...defaults, ...saved, ...(src.quickTest ? quickTest : {}), ...given };
  return validateTrainConfig(merged, Object.keys(given).length ? 'training settings' : configPath('train.json'), new Set(Object.keys(given)));
}

/** The config as plain JSON, for the checkpoint manifest. */
export function trainConfigJson(c: TrainConfig): JsonObject {
  return Object.fromEntries(trainConfigKeys.map((k) => [k, c[k]]));
}
