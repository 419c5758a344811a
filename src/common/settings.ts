/**
 * Settings declared once, as plain data: a setting's field name (camelCase, as in configs/*.json and the
 * library), its type and range, its default and a one-line description. From a list of them come the
 * checks (here), the flags (src/cli/flags.ts: the flag is the kebab-case of the name), the server's job
 * keys (src/serve/job-config.ts) and MANUAL's flag tables (test/common/settings.test.ts keeps them equal).
 *
 * The library speaks in fields: a bad value is a SettingError naming the field; the CLI names the flag.
 */
import * as fs from 'node:fs';
import { UserError } from './errors.js';

export type SettingValue = string | number | boolean | null;

export interface Setting {
  /** The field, camelCase; the flag is its kebab-case (`learningRate` -> `--learning-rate`). */
  name: string;
  /** 'path': a non-empty string naming a file or directory. */
  type: 'number' | 'integer' | 'string' | 'path' | 'boolean';
  /** Bounds: `min`/`max` inclusive, `above`/`below` exclusive. */
  min?: number;
  max?: number;
  above?: number;
  below?: number;
  choices?: readonly string[];
  /** null is a value too (maxSteps: no limit). */
  nullable?: boolean;
  /** The default, where the declaration holds it (else a configs/ file does, or the text below). */
  default?: SettingValue;
  /** The default in words, where it depends on something (shown in --help and MANUAL). */
  defaultText?: string;
  /** One line: --help, the server's options, MANUAL. */
  description: string;
  /** Other flag names (`f` for --force, `max-length` for --max-new-tokens). */
  alias?: string | readonly string[];
  /** false: a field of the config files with no flag (adamBeta1). */
  flag?: false;
}

/** `learningRate` -> `learning-rate`. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`);
}

/** What a value of the setting must be, in words: "a positive integer", "in [0, 1)", "one of a, b". */
export function ruleText(s: Setting): string {
  let rule: string;
  if (s.choices) rule = `one of ${s.choices.join(', ')}`;
  else if (s.type === 'path') rule = 'a path';
  else if (s.type === 'string') rule = 'a string';
  else if (s.type === 'boolean') rule = 'true or false';
  else rule = numberRule(s);
  return s.nullable ? `${rule} or null` : rule;
}

function numberRule(s: Setting): string {
  const lower = s.min !== undefined ? `[${s.min}` : s.above !== undefined ? `(${s.above}` : null;
  const upper = s.max !== undefined ? `${s.max}]` : s.below !== undefined ? `${s.below})` : null;
  if (s.type === 'integer') {
    const base = s.min === 1 ? 'a positive integer' : s.min === 0 ? 'a non-negative integer' : s.min !== undefined ? `an integer >= ${s.min}` : 'an integer';
    return s.max !== undefined ? `${base} at most ${s.max}` : base;
  }
  if (lower && upper) return `in ${lower}, ${upper}`;
  if (lower) return `a number ${s.min !== undefined ? '>=' : '>'} ${s.min ?? s.above}`;
  if (upper) return `a number ${s.max !== undefined ? '<=' : '<'} ${s.max ?? s.below}`;
  return 'a number';
}

/** True when `v` is a value the setting allows. */
export function allows(s: Setting, v: unknown): boolean {
  if (v === null) return s.nullable === true;
  if (s.choices) return s.choices.includes(v as string);
  if (s.type === 'path') return typeof v === 'string' && v !== '';
  if (s.type === 'string' || s.type === 'boolean') return typeof v === s.type;
  if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  if (s.type === 'integer' && !Number.isInteger(v)) return false;
  return !((s.min !== undefined && v < s.min) || (s.max !== undefined && v > s.max) || (s.above !== undefined && v <= s.above) || (s.below !== undefined && v >= s.below));
}

/**
 * A setting with a value it does not allow. `given`: the value is one the caller set explicitly (a flag,
 * a request), not one read from a file: a usage error, exit 2; the CLI then names the flag instead.
 */
export class SettingError extends UserError {
  constructor(
    readonly source: string,
    readonly field: string,
    readonly rule: string,
    readonly value: unknown,
    readonly given: boolean,
  ) {
    super(`${source}: ${field} must be ${rule} (got ${showValue(value)})`, given ? 2 : 1);
    this.name = 'SettingError';
  }
}

export function showValue(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** Throws a SettingError unless the setting allows `v`. */
export function checkSetting(s: Setting, v: unknown, source: string, given = false): void {
  if (!allows(s, v)) throw new SettingError(source, s.name, ruleText(s), v, given);
}

/** Every setting present in `values` and allowed; `given` names the fields the caller set explicitly. */
export function checkSettings(settings: readonly Setting[], values: object, source: string, given: ReadonlySet<string> = new Set()): void {
  const rec = values as Record<string, unknown>;
  for (const s of settings) {
    if (rec[s.name] === undefined) throw new SettingError(source, s.name, `set (${ruleText(s)})`, undefined, given.has(s.name));
    checkSetting(s, rec[s.name], source, given.has(s.name));
  }
}

/** The declared fields of `obj` that are set (undefined ones left out). */
export function pickSettings<T>(settings: readonly Setting[], obj: object): Partial<T> {
  const rec = obj as Record<string, unknown>;
  return Object.fromEntries(settings.filter((s) => rec[s.name] !== undefined).map((s) => [s.name, rec[s.name]])) as Partial<T>;
}

/**
 * A JSON object of settings read from `file` (a --config file): an unknown key, a value the setting does
 * not allow, or a file that is not a JSON object is one line naming the file. `alsoKnown`: keys another
 * reader of the same file checks (they are passed over here); `noun` names a key in the messages.
 */
export function readSettingsFile(file: string, settings: readonly Setting[], alsoKnown: readonly string[] = [], noun = 'key'): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${file}: config file not found`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message}); fix the file`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${file}: a config must be a JSON object such as {"${settings[0].name}": ...}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const s = settings.find((x) => x.name === key);
    if (!s) {
      if (alsoKnown.includes(key)) continue;
      throw new UserError(`${file}: unknown ${noun} "${key}"; known: ${[...settings.map((x) => x.name), ...alsoKnown].join(', ')}`);
    }
    checkSetting(s, v, file);
    out[key] = v;
  }
  return out;
}
