/**
 * Flags from settings declarations (src/common/settings.ts): `--<kebab-case of the field>`, with the
 * declaration's type, choices, aliases and description; and back, a library's SettingError about a field
 * the user gave as a flag, named by its flag.
 */
import type { Argv } from 'yargs';
import { UsageError } from '../common/errors.js';
import { kebab, SettingError, showValue, type Setting, type SettingValue } from '../common/settings.js';

/**
 * Add the flags of `settings` to `y`. Without `shown`, yargs applies each declaration's `default`. With
 * `shown` (the defaults a configs/ file holds), a flag has no yargs default, so it counts only when given
 * (a resumed run keeps its saved settings, a preset its values); --help shows `shown`'s value.
 */
export function settingFlags<T>(y: Argv<T>, settings: readonly Setting[], shown?: Partial<Record<string, SettingValue>>): Argv<T> {
  let out = y;
  for (const s of settings) {
    if (s.flag === false) continue;
    const value = shown ? shown[s.name] : undefined;
    const defaultDescription = s.defaultText ?? (value === undefined ? undefined : value === null ? 'none' : String(value));
    out = out.option(kebab(s.name), {
      type: s.type === 'integer' ? 'number' : s.type === 'path' ? 'string' : s.type,
      describe: s.description,
      ...(s.alias ? { alias: s.alias as string | string[] } : {}),
      ...(s.choices ? { choices: s.choices } : {}),
      ...(!shown && s.default !== undefined ? { default: s.default } : {}),
      ...(defaultDescription !== undefined ? { defaultDescription } : {}),
    }) as unknown as Argv<T>;
  }
  return out;
}

/** --force and --quiet: every command writing an output or printing progress has them, spelled alike. */
export function forceFlag(description: string, withDefault = true): Setting {
  return { name: 'force', type: 'boolean', alias: 'f', description, ...(withDefault ? { default: false } : {}) };
}

export function quietFlag(description = 'no progress output (the summary is still printed)'): Setting {
  return { name: 'quiet', type: 'boolean', alias: 'q', default: false, description };
}

/**
 * A SettingError about a field the user gave, named by its flag as well (a usage error, exit 2); any other
 * error unchanged. `settings`: the declarations the command's flags come from.
 */
export function namedByFlag(err: unknown, settings: readonly Setting[]): unknown {
  if (!(err instanceof SettingError) || !err.given) return err;
  const s = settings.find((x) => x.name === err.field && x.flag !== false);
  return s ? new UsageError(`${err.field} (--${kebab(s.name)}) must be ${err.rule} (got ${showValue(err.value)})`) : err;
}
