/**
 * A training job's `config`: the settings of the stages it runs (gptmed-convert, gptmed-train-tokenizer,
 * gptmed-tokenize, gptmed-train), camelCase as their fields, plus `name`. The keys a job may set are listed
 * here; their types, choices, defaults and descriptions come from the stages' declarations (the ones their
 * flags come from), so the JSON schema follows the CLI. Paths, --force, --resume and the like are the
 * server's to set, never the client's.
 */
import { kebab, type Setting } from '../common/settings.js';
import { convertSettings } from '../convert/settings.js';
import { tokenizeSettings } from '../dataset/settings.js';
import { modelShapeSettings } from '../model/config.js';
import { tokenizerSettings } from '../tokenizer/settings.js';
import { quickTestSetting, trainDefaults, trainSettings } from '../train/config.js';

export type Stage = 'convert' | 'train-tokenizer' | 'tokenize' | 'train';
export const STAGES: readonly Stage[] = ['convert', 'train-tokenizer', 'tokenize', 'train'];

/** The keys a job may set, by stage (a key in several stages goes to each: `seed`). */
export const JOB_KEYS: Record<Stage, readonly string[]> = {
  convert: ['format', 'encoding', 'header', 'questionCol', 'answerCol', 'stripHtml', 'table', 'query', 'dedupe', 'minAnswerWords', 'maxAnswerWords', 'shuffle', 'seed'],
  'train-tokenizer': ['vocabSize', 'characterCoverage', 'normalization', 'byteFallback', 'maxSentenceLength'],
  tokenize: ['maxLength', 'trainSplit', 'testSplit', 'stride', 'seed', 'maskPrompt'],
  train: [
    'modelSize', 'dModel', 'nLayers', 'nHeads', 'dFf', 'maxSeqLen', 'dropout',
    'numEpochs', 'maxSteps', 'batchSize', 'gradAccum', 'learningRate', 'minLr', 'warmupSteps', 'weightDecay', 'gradClip',
    'evalInterval', 'evalBatches', 'saveInterval', 'keepLast', 'earlyStoppingPatience', 'logInterval', 'device', 'seed', 'quickTest',
    'initFrom', 'loraRank', 'loraAlpha', 'loraDropout', 'loraTargets',
  ],
};

/**
 * Keys the server resolves itself (jobs.ts), never passed on as the flag: `initFrom` names a model of this
 * server, not a path; its checkpoint and tokenizer are what the stages get.
 */
const SERVER_KEYS: Readonly<Record<string, string>> = {
  initFrom: "Fine-tune: start from this model's weights (an id of GET /v1/models; its shape and tokenizer are kept, so the job trains no tokenizer)",
};

/** What a fine-tuning job (initFrom) takes from its model, so may not set: the shape, and the tokenizer's settings. */
export const FIXED_BY_INIT_FROM: readonly string[] = ['modelSize', 'dModel', 'nLayers', 'nHeads', 'dFf', 'maxSeqLen', ...JOB_KEYS['train-tokenizer']];

/** Keys that mean something only with initFrom (LoRA adapts the model it names). */
export const NEED_INIT_FROM: readonly string[] = ['loraRank', 'loraAlpha', 'loraDropout', 'loraTargets'];

/** A job's name: its run directory under --runs-dir, and the model id it is served as. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export type FlagType = 'number' | 'boolean' | 'string';

export interface JobKey {
  key: string;
  flag: string;
  type: FlagType;
  choices?: readonly string[];
  stages: Stage[];
  /** What the stage uses when the key is left out (null: none, or it depends, as a model shape on its preset). */
  default: string | number | boolean | null;
  /** The flag's --help line, without its "[default: ...]". */
  description: string;
}

export interface JobConfig {
  name?: string;
  [key: string]: string | number | boolean | undefined;
}

/** The JSON schema of `config` (for documentation and for `validateJobConfig`). */
export interface JobConfigSchema {
  type: 'object';
  additionalProperties: false;
  properties: Record<string, { type: FlagType; enum?: readonly string[]; pattern?: string; 'x-stages'?: Stage[] }>;
}

/** Each stage's declarations (its flags come from the same ones). */
const STAGE_SETTINGS: Record<Stage, readonly Setting[]> = {
  convert: convertSettings,
  'train-tokenizer': tokenizerSettings,
  tokenize: tokenizeSettings,
  train: [...trainSettings, ...modelShapeSettings, quickTestSetting],
};

/** A stage's default for `s`: gptmed-train's are configs/train.json's (a model shape's depends on its preset). */
function stageDefault(stage: Stage, s: Setting): JobKey['default'] {
  const value = stage === 'train' ? (trainDefaults() as unknown as Record<string, unknown>)[s.name] : s.default;
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : null;
}

function flagType(s: Setting): FlagType {
  return s.type === 'integer' ? 'number' : s.type === 'path' ? 'string' : s.type;
}

/** The job keys with their types, defaults and descriptions, from the stages' declarations. */
export async function loadJobKeys(): Promise<Map<string, JobKey>> {
  const keys = new Map<string, JobKey>();
  for (const stage of STAGES) {
    for (const key of JOB_KEYS[stage]) {
      const s = STAGE_SETTINGS[stage].find((x) => x.name === key);
      if (!s) throw new Error(`job config key ${key}: gptmed-${stage} declares no such setting`);
      const type = flagType(s);
      const known = keys.get(key);
      if (known && known.type !== type) throw new Error(`job config key ${key}: a ${known.type} for gptmed-${known.stages[0]}, a ${type} for gptmed-${stage}`);
      // A key several stages share (seed) shows the last stage's default and help: the stage it shapes most.
      const stages = known ? [...known.stages, stage] : [stage];
      const description = SERVER_KEYS[key] ?? s.description;
      keys.set(key, { key, flag: kebab(key), type, choices: s.choices, stages, default: stageDefault(stage, s), description });
    }
  }
  return keys;
}

export function jobConfigSchema(keys: Map<string, JobKey>): JobConfigSchema {
  const properties: JobConfigSchema['properties'] = { name: { type: 'string', pattern: NAME_PATTERN.source } };
  for (const k of keys.values()) properties[k.key] = { type: k.type, ...(k.choices ? { enum: k.choices } : {}), 'x-stages': k.stages };
  return { type: 'object', additionalProperties: false, properties };
}

/** Thrown for a config the schema refuses; `param` names the key (`config.maxSteps`) or `config`. */
export class JobConfigError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

/**
 * Parse and check the `config` field: a JSON object of known keys of the right types. Every unknown key is
 * named at once; a wrong type names its key.
 */
export function validateJobConfig(text: string | undefined, schema: JobConfigSchema): JobConfig {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new JobConfigError(`config: not valid JSON (${(err as Error).message})`, 'config');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JobConfigError('config: must be a JSON object of settings, e.g. {"maxSteps": 100}', 'config');
  const entries = Object.entries(value as Record<string, unknown>);
  const unknown = entries.map(([k]) => k).filter((k) => !Object.hasOwn(schema.properties, k));
  if (unknown.length > 0) {
    throw new JobConfigError(
      `config: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${Object.keys(schema.properties).join(', ')})`,
      `config.${unknown[0]}`,
    );
  }
  for (const [k, v] of entries) {
    const p = schema.properties[k];
    const ok = p.type === 'number' ? typeof v === 'number' && Number.isFinite(v) : typeof v === p.type;
    if (!ok) throw new JobConfigError(`config.${k}: must be a ${p.type} (got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v})`, `config.${k}`);
    if (p.enum && !p.enum.includes(v as string)) throw new JobConfigError(`config.${k}: must be one of ${p.enum.join(', ')} (got ${JSON.stringify(v)})`, `config.${k}`);
    if (p.pattern && !new RegExp(p.pattern).test(v as string)) {
      throw new JobConfigError(`config.${k}: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 (got ${JSON.stringify(v)})`, `config.${k}`);
    }
  }
  return value as JobConfig;
}

/** The flags of `stage` for a job's config: `--key=value`, `--flag` / `--no-flag`. */
export function stageFlags(stage: Stage, config: JobConfig, keys: Map<string, JobKey>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(config)) {
    const spec = keys.get(k);
    if (!spec || !spec.stages.includes(stage) || v === undefined || Object.hasOwn(SERVER_KEYS, k)) continue;
    if (spec.type === 'boolean') out.push(v ? `--${spec.flag}` : `--no-${spec.flag}`);
    else out.push(`--${spec.flag}=${String(v)}`);
  }
  return out;
}
