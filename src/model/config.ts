/**
 * The model's shape: presets in configs/<size>.json, a user's own JSON file,
 * and per-field overrides, merged and checked here. The vocabulary size is
 * not part of a preset: it comes from the shards' meta.json.
 */
import * as fs from 'node:fs';
import { UsageError, UserError } from '../common/errors.js';
import { configPath } from '../common/paths.js';
import { MAX_ROW_LENGTH } from '../dataset/shards.js';

/** Plain data: everything needed to rebuild a GPT's shape. */
export interface ModelConfig {
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  /** Width of the MLP's hidden layer. */
  dFf: number;
  /** Context length: the learned positional embedding has this many rows. */
  maxSeqLen: number;
  dropout: number;
}

/** The fields a preset or `--config` file gives (everything but the vocabulary). */
export type ModelShape = Omit<ModelConfig, 'vocabSize'>;

export const modelSizes = ['tiny', 'small', 'medium'] as const;
export type ModelSize = (typeof modelSizes)[number];

const shapeFields: ReadonlyArray<keyof ModelShape> = ['dModel', 'nLayers', 'nHeads', 'dFf', 'maxSeqLen', 'dropout'];

function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${file}: model config file not found`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message}); fix the file`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${file}: a model config must be a JSON object such as {"dModel": 128, ...}`);
  }
  return value as Record<string, unknown>;
}

/** Check a partial model shape read from `source`; unknown fields are refused so typos do not pass silently. */
function checkShapeFields(obj: Record<string, unknown>, source: string): Partial<ModelShape> {
  const out: Partial<ModelShape> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (!(shapeFields as readonly string[]).includes(key)) {
      throw new UserError(`${source}: unknown model field "${key}"; known fields: ${shapeFields.join(', ')}`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new UserError(`${source}: field "${key}" must be a number`);
    }
    out[key as keyof ModelShape] = value;
  }
  return out;
}

/** The preset configs/<size>.json. */
export function loadPreset(size: ModelSize): ModelShape {
  const file = configPath(`${size}.json`);
  return checkShapeFields(readJsonObject(file), file) as ModelShape;
}

export interface ModelConfigSources {
  /** Preset used as the base. */
  modelSize: ModelSize;
  /** A JSON file with some or all model fields; it overrides the preset. */
  configFile?: string;
  /** Per-field overrides (from flags); they override the file. */
  overrides?: Partial<ModelShape>;
  vocabSize: number;
}

/** Preset < --config file < per-field overrides, then checked. */
export function resolveModelConfig(src: ModelConfigSources): ModelConfig {
  const fromFile = src.configFile ? checkShapeFields(readJsonObject(src.configFile), src.configFile) : {};
  const overrides = checkShapeFields({ ...(src.overrides ?? {}) }, 'model override');
  for (const key of shapeFields) {
    // A bad value from a flag is named as the flag, and is a usage error.
    const problem = overrides[key] === undefined ? null : fieldProblem(key, overrides[key]);
    if (problem) throw new UsageError(`--${key.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)} must be ${problem} (got ${String(overrides[key])})`);
  }
  const config: ModelConfig = { ...loadPreset(src.modelSize), ...fromFile, ...overrides, vocabSize: src.vocabSize };
  validateModelConfig(config, src.configFile ?? `preset ${src.modelSize}`);
  return config;
}

/** What a model field's value must be, when it is not that; null when it is fine. */
function fieldProblem(key: keyof ModelConfig, v: unknown): string | null {
  if (key === 'dropout') return typeof v === 'number' && v >= 0 && v < 1 ? null : 'in [0, 1)';
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) return 'a positive integer';
  // Longer contexts could never be trained (see MAX_ROW_LENGTH).
  if (key === 'maxSeqLen' && v > MAX_ROW_LENGTH - 1) return `at most ${MAX_ROW_LENGTH - 1}`;
  return null;
}

/** Every field present and sensible; `source` names where the config came from. */
export function validateModelConfig(config: ModelConfig, source: string): void {
  for (const key of ['vocabSize', ...shapeFields] as const) {
    const problem = fieldProblem(key, config[key]);
    if (problem) throw new UserError(`${source}: model field "${key}" must be ${problem} (got ${String(config[key])})`);
  }
  if (config.dModel % config.nHeads !== 0) {
    throw new UserError(`${source}: dModel (${config.dModel}) must be divisible by nHeads (${config.nHeads})`);
  }
}
