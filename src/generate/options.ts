/**
 * Generation options: defaults and the four presets come from
 * configs/generate.json; a caller's explicit options override the preset,
 * which overrides the defaults. Every value is checked once, here, against
 * the declarations (generationSettings).
 */
import * as fs from 'node:fs';
import { UserError } from '../common/errors.js';
import { configPath } from '../common/paths.js';
import { checkSetting, checkSettings, pickSettings, type Setting } from '../common/settings.js';
import type { SamplingOptions } from './sampling.js';

export const PRESET_NAMES = ['greedy', 'balanced', 'creative', 'conservative'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface GenerationOptions extends SamplingOptions {
  /** Most tokens one answer may have (the end-of-answer token included). */
  maxNewTokens: number;
  /** Seed of the sampler; the same seed gives the same answers. */
  seed: number;
  /** Answers drawn per question. */
  numSamples: number;
}

/** What a caller may set: any option, and a preset underneath them. */
export type GenerationRequest = Partial<GenerationOptions> & { preset?: PresetName };

interface GenerateConfig {
  defaults: GenerationOptions;
  presets: Record<PresetName, SamplingOptions>;
  evaluate: { preset: PresetName };
}

/** The generation options, declared once; their defaults are configs/generate.json's. */
export const generationSettings: readonly Setting[] = [
  { name: 'maxNewTokens', type: 'integer', min: 1, alias: 'max-length', description: 'most tokens in one answer' },
  { name: 'temperature', type: 'number', min: 0, description: 'sampling temperature; 0 is greedy' },
  { name: 'topK', type: 'integer', min: 0, description: 'sample from the k most likely tokens; 0 turns it off' },
  { name: 'topP', type: 'number', above: 0, max: 1, description: 'sample from the smallest set of tokens whose probability reaches p; 1 turns it off' },
  { name: 'repetitionPenalty', type: 'number', above: 0, description: 'penalty on tokens already in the answer; 1 turns it off' },
  { name: 'noRepeatNgram', type: 'integer', min: 0, description: 'never repeat an n-gram of this size in the answer; 0 turns it off' },
  { name: 'seed', type: 'integer', description: 'seed of the sampler: the same seed gives the same answers' },
  { name: 'numSamples', type: 'integer', min: 1, description: 'answers to draw per question' },
];

export const presetSetting: Setting = {
  name: 'preset',
  type: 'string',
  choices: PRESET_NAMES,
  description: 'a set of sampling options (configs/generate.json); explicit flags override it',
};

const SAMPLING_KEYS: ReadonlyArray<keyof SamplingOptions> = ['temperature', 'topK', 'topP', 'repetitionPenalty', 'noRepeatNgram'];
const samplingSettings = generationSettings.filter((s) => (SAMPLING_KEYS as readonly string[]).includes(s.name));

function objectAt(raw: Record<string, unknown> | undefined, key: string, file: string): Record<string, unknown> {
  const v = raw?.[key];
  if (typeof v !== 'object' || v === null) throw new UserError(`${file}: "${key}" must be an object`);
  return v as Record<string, unknown>;
}

let cached: GenerateConfig | null = null;

/** configs/generate.json, read and checked once per process. */
export function generateConfig(): GenerateConfig {
  if (cached) return cached;
  const file = configPath('generate.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`${file}: cannot read the generation config (${(err as Error).message}); restore it from the package`);
  }
  const defaults = objectAt(raw, 'defaults', file);
  checkSettings(generationSettings, defaults, `${file} defaults`);
  const presetsRaw = objectAt(raw, 'presets', file);
  const presets = {} as Record<PresetName, SamplingOptions>;
  for (const name of PRESET_NAMES) {
    const preset = objectAt(presetsRaw, name, file);
    checkSettings(samplingSettings, preset, `${file} presets.${name}`);
    presets[name] = pickSettings<SamplingOptions>(samplingSettings, preset) as SamplingOptions;
  }
  const evaluate = objectAt(raw, 'evaluate', file);
  checkSetting(presetSetting, evaluate.preset, `${file} evaluate`);
  cached = { defaults: pickSettings<GenerationOptions>(generationSettings, defaults) as GenerationOptions, presets, evaluate: { preset: evaluate.preset as PresetName } };
  return cached;
}

/** Throws a SettingError naming the first option out of range; `given`: the options the caller set. */
export function checkOptions(o: GenerationOptions, given: ReadonlySet<string> = new Set()): GenerationOptions {
  checkSettings(generationSettings, o, 'generation options', given);
  return o;
}

/** Defaults, then the preset, then the caller's explicit options (undefined ones ignored). */
export function resolveOptions(request: GenerationRequest = {}): GenerationOptions {
  const config = generateConfig();
  const { preset, ...rest } = request;
  if (preset !== undefined) checkSetting(presetSetting, preset, 'generation options', true);
  const explicit = pickSettings<GenerationOptions>(generationSettings, rest);
  const merged: GenerationOptions = { ...config.defaults, ...(preset ? config.presets[preset] : {}), ...explicit };
  return checkOptions(merged, new Set(Object.keys(explicit)));
}
