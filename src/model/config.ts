/**
 * The model's shape: presets in configs/<size>.json, a user's own JSON file,
 * and per-field overrides, merged and checked here against the declarations
 * of its fields (modelShapeSettings). The vocabulary size is
 * not part of a preset: it comes from the shards' meta.json.
 */
import * as fs from 'node:fs';
import { UserError } from '../common/errors.js';
import { configPath } from '../common/paths.js';
import { checkSetting, checkSettings, pickSettings, readSettingsFile, type Setting } from '../common/settings.js';
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

/** The shape's fields as settings: a preset's, a --config file's, and the flags that override them. */
export const modelShapeSettings: readonly Setting[] = [
  { name: 'dModel', type: 'integer', min: 1, description: 'Override the preset: embedding width' },
  { name: 'nLayers', type: 'integer', min: 1, description: 'Override the preset: transformer blocks' },
  { name: 'nHeads', type: 'integer', min: 1, description: 'Override the preset: attention heads' },
  { name: 'dFf', type: 'integer', min: 1, description: 'Override the preset: MLP hidden width' },
  // Longer contexts could never be trained (see MAX_ROW_LENGTH).
  { name: 'maxSeqLen', type: 'integer', min: 1, max: MAX_ROW_LENGTH - 1, description: 'Override the preset: context length' },
  { name: 'dropout', type: 'number', min: 0, below: 1, description: 'Override the preset: dropout rate' },
];

const vocabSizeSetting: Setting = { name: 'vocabSize', type: 'integer', min: 1, flag: false, description: "the shards' vocabulary (meta.json)" };

/**
 * A --config file may also hold training settings (src/train/config.ts reads and checks those). Their
 * names are the keys of configs/train.json, read from the file because src/train sits above this module.
 */
function trainingKeys(): string[] {
  const defaults = JSON.parse(fs.readFileSync(configPath('train.json'), 'utf8')) as Record<string, unknown>;
  return Object.keys(defaults).filter((k) => k !== 'quickTest');
}

/** The preset configs/<size>.json. */
export function loadPreset(size: ModelSize): ModelShape {
  const file = configPath(`${size}.json`);
  const shape = readSettingsFile(file, modelShapeSettings, [], 'model field');
  checkSettings(modelShapeSettings, shape, file);
  return shape as unknown as ModelShape;
}

export interface ModelConfigSources {
  /** Preset used as the base. */
  modelSize: ModelSize;
  /** A JSON file with some or all model fields (and maybe training settings); it overrides the preset. */
  configFile?: string;
  /** Per-field overrides (from flags); they override the file. */
  overrides?: Partial<ModelShape>;
  vocabSize: number;
}

/** Preset < --config file < per-field overrides, then checked. A bad override is the caller's: `given`. */
export function resolveModelConfig(src: ModelConfigSources): ModelConfig {
  const fromFile = src.configFile ? readSettingsFile(src.configFile, modelShapeSettings, trainingKeys(), 'model field') : {};
  const overrides = pickSettings<ModelShape>(modelShapeSettings, src.overrides ?? {});
  for (const s of modelShapeSettings) {
    const v = overrides[s.name as keyof ModelShape];
    if (v !== undefined) checkSetting(s, v, 'model settings', true);
  }
  const config: ModelConfig = { ...loadPreset(src.modelSize), ...fromFile, ...overrides, vocabSize: src.vocabSize };
  validateModelConfig(config, src.configFile ?? `preset ${src.modelSize}`);
  return config;
}

/** Every field present and sensible; `source` names where the config came from. */
export function validateModelConfig(config: ModelConfig, source: string): void {
  checkSettings([vocabSizeSetting, ...modelShapeSettings], config, source);
  if (config.dModel % config.nHeads !== 0) {
    throw new UserError(`${source}: dModel (${config.dModel}) must be divisible by nHeads (${config.nHeads})`);
  }
}
