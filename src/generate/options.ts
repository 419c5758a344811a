/**
 * Generation options: defaults and the four presets come from
 * configs/generate.json; a caller's explicit options override the preset,
 * which overrides the defaults. Every value is checked once, here.
 */
import * as fs from 'node:fs';
import { UsageError, UserError } from '../common/errors.js';
import { configPath } from '../common/paths.js';
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
  evaluate: { preset: PresetName; output: string };
}

const SAMPLING_KEYS = ['temperature', 'topK', 'topP', 'repetitionPenalty', 'noRepeatNgram'] as const;
const OPTION_KEYS = [...SAMPLING_KEYS, 'maxNewTokens', 'seed', 'numSamples'] as const;

/** How each option is named on the command line, for messages. */
const FLAG: Record<keyof GenerationOptions, string> = {
  temperature: '--temperature',
  topK: '--top-k',
  topP: '--top-p',
  repetitionPenalty: '--repetition-penalty',
  noRepeatNgram: '--no-repeat-ngram',
  maxNewTokens: '--max-new-tokens',
  seed: '--seed',
  numSamples: '--num-samples',
};

function numbersOf<K extends string>(obj: unknown, keys: readonly K[], where: string): Record<K, number> {
  const file = configPath('generate.json');
  if (typeof obj !== 'object' || obj === null) throw new UserError(`${file}: "${where}" must be an object`);
  const rec = obj as Record<string, unknown>;
  const out = {} as Record<K, number>;
  for (const k of keys) {
    const v = rec[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`${file}: "${where}.${k}" must be a number`);
    out[k] = v;
  }
  return out;
}

let cached: GenerateConfig | null = null;

/** configs/generate.json, read and checked once per process. */
export function generateConfig(): GenerateConfig {
  if (cached) return cached;
  const file = configPath('generate.json');
  let raw: { defaults?: unknown; presets?: Record<string, unknown>; evaluate?: { preset?: unknown; output?: unknown } };
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof raw;
  } catch (err) {
    throw new UserError(`${file}: cannot read the generation config (${(err as Error).message}); restore it from the package`);
  }
  const presets = {} as Record<PresetName, SamplingOptions>;
  for (const name of PRESET_NAMES) presets[name] = numbersOf(raw.presets?.[name], SAMPLING_KEYS, `presets.${name}`);
  const preset = raw.evaluate?.preset;
  if (!PRESET_NAMES.includes(preset as PresetName)) throw new UserError(`${file}: "evaluate.preset" must be one of ${PRESET_NAMES.join(', ')}`);
  if (typeof raw.evaluate?.output !== 'string') throw new UserError(`${file}: "evaluate.output" must be a file name`);
  const defaults = checkOptions(numbersOf(raw.defaults, OPTION_KEYS, 'defaults'));
  for (const name of PRESET_NAMES) checkOptions({ ...defaults, ...presets[name] });
  cached = { defaults, presets, evaluate: { preset: preset as PresetName, output: raw.evaluate.output } };
  return cached;
}

function mustBe(ok: boolean, key: keyof GenerationOptions, what: string, value: number): void {
  if (!ok) throw new UsageError(`${FLAG[key]} must be ${what}, got ${value}`);
}

/** Throws a UserError naming the flag of the first option out of range. */
export function checkOptions(o: GenerationOptions): GenerationOptions {
  const int = Number.isInteger;
  mustBe(Number.isFinite(o.temperature) && o.temperature >= 0, 'temperature', '>= 0 (0 is greedy)', o.temperature);
  mustBe(int(o.topK) && o.topK >= 0, 'topK', 'a whole number >= 0 (0 turns it off)', o.topK);
  mustBe(o.topP > 0 && o.topP <= 1, 'topP', 'in (0, 1] (1 turns it off)', o.topP);
  mustBe(Number.isFinite(o.repetitionPenalty) && o.repetitionPenalty > 0, 'repetitionPenalty', '> 0 (1 turns it off)', o.repetitionPenalty);
  mustBe(int(o.noRepeatNgram) && o.noRepeatNgram >= 0, 'noRepeatNgram', 'a whole number >= 0 (0 turns it off)', o.noRepeatNgram);
  mustBe(int(o.maxNewTokens) && o.maxNewTokens >= 1, 'maxNewTokens', 'a whole number >= 1', o.maxNewTokens);
  mustBe(int(o.seed), 'seed', 'a whole number', o.seed);
  mustBe(int(o.numSamples) && o.numSamples >= 1, 'numSamples', 'a whole number >= 1', o.numSamples);
  return o;
}

/** Defaults, then the preset, then the caller's explicit options (undefined ones ignored). */
export function resolveOptions(request: GenerationRequest = {}): GenerationOptions {
  const config = generateConfig();
  const { preset, ...explicit } = request;
  if (preset !== undefined && !PRESET_NAMES.includes(preset)) {
    throw new UsageError(`--preset must be one of ${PRESET_NAMES.join(', ')}, got ${String(preset)}`);
  }
  const merged: GenerationOptions = { ...config.defaults, ...(preset ? config.presets[preset] : {}) };
  for (const key of OPTION_KEYS) {
    const v = explicit[key];
    if (v !== undefined) merged[key] = v;
  }
  return checkOptions(merged);
}
