/**
 * One form field per job setting of GET /v1/options: a label, an input that starts at the setting's
 * default, and its one-line description with the default spelled out. A field reads back only a value
 * that differs from the default, so a job's config holds what the user changed and the commands' own
 * defaults decide the rest.
 */
import { el } from './dom.js';
import type { Setting, SettingValue } from './types.js';

/** Friendlier names than the keys for the settings most people touch; the key is shown beside them. */
const LABELS: Record<string, string> = {
  dModel: 'Width',
  nLayers: 'Layers',
  nHeads: 'Attention heads',
  dFf: 'MLP width',
  maxSteps: 'Steps',
  numEpochs: 'Epochs',
  batchSize: 'Batch size',
  learningRate: 'Learning rate',
  vocabSize: 'Vocabulary size',
  maxLength: 'Max length (tokens)',
  seed: 'Seed',
};

/** "evalInterval" -> "Eval interval". */
function labelFor(key: string): string {
  const words = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return LABELS[key] ?? words.charAt(0).toUpperCase() + words.slice(1);
}

export interface SettingField {
  readonly setting: Setting;
  /** The label, input and hint, ready to place. */
  readonly element: HTMLElement;
  readonly input: HTMLInputElement | HTMLSelectElement;
  /** The value if it differs from the default; throws an Error naming the field for a bad number. */
  read(): SettingValue | undefined;
  /** Show `value` (null: the default). */
  set(value: SettingValue | null): void;
}

function defaultText(setting: Setting): string {
  if (setting.default === null) return 'none';
  if (setting.type === 'boolean') return setting.default ? 'on' : 'off';
  return String(setting.default);
}

/** A boolean with a known default is a checkbox; one whose default depends on the input is a select. */
function makeInput(setting: Setting, id: string): HTMLInputElement | HTMLSelectElement {
  if (setting.type === 'boolean' && setting.default === null) {
    return el('select', { id, name: setting.key }, el('option', { value: '' }, 'automatic'), el('option', { value: 'true' }, 'on'), el('option', { value: 'false' }, 'off'));
  }
  if (setting.type === 'boolean') return el('input', { id, name: setting.key, type: 'checkbox' });
  if (setting.choices) {
    const select = el('select', { id, name: setting.key });
    if (setting.default === null) select.append(el('option', { value: '' }, 'default'));
    for (const choice of setting.choices) select.append(el('option', { value: choice }, choice));
    return select;
  }
  const type = setting.type === 'number' ? 'number' : 'text';
  return el('input', { id, name: setting.key, type, step: setting.type === 'number' ? 'any' : null, placeholder: setting.default === null ? 'none' : null });
}

function parse(setting: Setting, input: HTMLInputElement | HTMLSelectElement): SettingValue | null {
  if (input instanceof HTMLInputElement && input.type === 'checkbox') return input.checked;
  const text = input.value.trim();
  if (text === '') return null;
  if (setting.type === 'boolean') return text === 'true';
  if (setting.type === 'string') return text;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${labelFor(setting.key)} (${setting.key}): "${text}" is not a number`);
  return n;
}

export function settingField(setting: Setting): SettingField {
  const id = `set-${setting.key}`;
  const input = makeInput(setting, id);
  const hint = el('span', { class: 'hint', id: `${id}-hint` }, `${setting.description} (default ${defaultText(setting)})`);
  input.setAttribute('aria-describedby', hint.id);
  const label = el('label', { for: id }, labelFor(setting.key), ' ', el('code', {}, setting.key));
  const checkbox = input instanceof HTMLInputElement && input.type === 'checkbox';
  const element = el('div', { class: checkbox ? 'field field-checkbox' : 'field', 'data-key': setting.key }, label, input, hint);

  const set = (value: SettingValue | null): void => {
    if (input instanceof HTMLInputElement && input.type === 'checkbox') input.checked = value === true;
    else input.value = value === null ? '' : String(value);
  };
  set(setting.default);
  return {
    setting,
    element,
    input,
    set,
    read() {
      const value = parse(setting, input);
      return value === null || value === setting.default ? undefined : value;
    },
  };
}

/** The changed settings of some fields, as a job config; every bad value is named at once. */
export function readSettings(fields: Iterable<SettingField>): Record<string, SettingValue> {
  const config: Record<string, SettingValue> = {};
  const problems: string[] = [];
  for (const field of fields) {
    try {
      const value = field.read();
      if (value !== undefined) config[field.setting.key] = value;
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return config;
}
