/**
 * The Train tab: the job's settings (model size or a custom shape, how long, the few settings most
 * runs change, the rest under "More settings"), an estimate of the run's time on this machine
 * (POST /v1/jobs/estimate, asked again a moment after each change), and Start (POST /v1/jobs with the
 * data file and the config).
 */
import { isAbort, postForm, postJson } from './api.js';
import { clearError, errorText, showError } from './alerts.js';
import type { Dataset, DataView } from './data-view.js';
import { byId, debounce, el, replaceChildren } from './dom.js';
import { formatCount, formatDuration, formatParameters, formatRate } from './format.js';
import { readSettings, settingField, type SettingField } from './settings-form.js';
import type { JobEstimate, JobView, ModelSize, Options, Setting, SettingValue } from './types.js';

const SHAPE_KEYS = ['dModel', 'nLayers', 'nHeads', 'dFf'] as const;
const LENGTH_KEYS = ['maxSteps', 'numEpochs'] as const;
const MAIN_KEYS = ['batchSize', 'learningRate', 'vocabSize', 'maxLength', 'seed'];
/** Settings shown elsewhere: the size radios, the custom shape, steps or epochs, the main ones. */
const PLACED = new Set<string>(['modelSize', ...SHAPE_KEYS, ...LENGTH_KEYS, ...MAIN_KEYS]);
const STAGE_TITLES: Record<string, string> = {
  'train-tokenizer': 'Tokenizer (gptmed-train-tokenizer)',
  tokenize: 'Tokenizing (gptmed-tokenize)',
  train: 'Training (gptmed-train)',
};

export class TrainView {
  private readonly form = byId<HTMLFormElement>('train-form');
  private shapeFields = new Map<string, SettingField>();
  private lengthFields = new Map<string, SettingField>();
  private otherFields: SettingField[] = [];
  private sizes: ModelSize[] = [];
  private dataset: Dataset | null = null;
  private visible = false;
  private estimateRequest: AbortController | null = null;
  private readonly estimateSoon = debounce(() => void this.estimate(), 700);

  constructor(
    private readonly dataView: DataView,
    private readonly onStarted: (job: JobView) => void,
  ) {
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.start();
    });
    this.form.addEventListener('input', () => this.changed());
    this.form.addEventListener('change', () => this.changed());
    this.updateStartButton();
  }

  build(options: Options): void {
    const byKey = new Map(options.training.settings.map((s) => [s.key, s]));
    this.sizes = options.training.modelSizes;
    this.buildSizes(options.training.defaultModelSize);
    this.shapeFields = this.placeFields('shape-fields', SHAPE_KEYS, byKey);
    this.lengthFields = this.placeFields('length-fields', LENGTH_KEYS, byKey);
    this.otherFields = [...this.placeFields('main-fields', MAIN_KEYS, byKey).values()];
    this.buildMoreSettings(options.training.settings.filter((s) => !PLACED.has(s.key) && !s.stages.every((stage) => stage === 'convert')));
    this.fillShape(options.training.defaultModelSize);
    this.showChosenParts();
  }

  setDataset(dataset: Dataset): void {
    this.dataset = dataset;
    const status = byId('train-data-status');
    const p = dataset.preview;
    if (dataset.conversionError) status.textContent = `${dataset.file.name} does not convert (see the Data tab): ${dataset.conversionError}`;
    else if (p) status.textContent = `Data: ${dataset.file.name}, ${formatCount(p.pairs)} pairs.`;
    else status.textContent = `Data: ${dataset.file.name} (no preview yet).`;
    this.updateStartButton();
    this.estimateSoon();
  }

  onShow(): void {
    this.visible = true;
    this.estimateSoon();
  }

  onHide(): void {
    this.visible = false;
  }

  private buildSizes(defaultSize: string): void {
    const radios = [...this.sizes.map((s) => ({ name: s.name, text: `${s.name} (${formatParameters(s.parameters)} parameters)` })), { name: 'custom', text: 'custom shape' }];
    replaceChildren(
      byId('size-choices'),
      ...radios.map((r) => el('label', { class: 'choice' }, el('input', { type: 'radio', name: 'modelSize', value: r.name, id: `size-${r.name}`, checked: r.name === defaultSize }), ` ${r.text}`)),
    );
  }

  private placeFields(containerId: string, keys: readonly string[], byKey: Map<string, Setting>): Map<string, SettingField> {
    const fields = new Map<string, SettingField>();
    for (const key of keys) {
      const setting = byKey.get(key);
      if (setting) fields.set(key, settingField(setting));
    }
    replaceChildren(byId(containerId), ...[...fields.values()].map((f) => f.element));
    return fields;
  }

  /** Grouped by the command that takes them, so a reader of MANUAL.md finds them under the same name. */
  private buildMoreSettings(settings: Setting[]): void {
    const container = byId('more-fields');
    container.replaceChildren();
    for (const stage of Object.keys(STAGE_TITLES)) {
      const fields = settings.filter((s) => s.stages[0] === stage).map(settingField);
      if (fields.length === 0) continue;
      container.append(el('h4', {}, STAGE_TITLES[stage]), el('div', { class: 'fields' }, ...fields.map((f) => f.element)));
      this.otherFields.push(...fields);
    }
  }

  private chosenSize(): string {
    return this.form.querySelector<HTMLInputElement>('input[name="modelSize"]:checked')?.value ?? 'custom';
  }

  private chosenLength(): 'steps' | 'epochs' {
    return this.form.querySelector<HTMLInputElement>('input[name="trainFor"]:checked')?.value === 'epochs' ? 'epochs' : 'steps';
  }

  /** The custom shape starts from the preset last picked, so "custom" means "this, but changed". */
  private fillShape(sizeName: string): void {
    const size = this.sizes.find((s) => s.name === sizeName);
    if (!size) return;
    for (const key of SHAPE_KEYS) this.shapeFields.get(key)?.set(size[key]);
  }

  private showChosenParts(): void {
    byId('shape-fieldset').hidden = this.chosenSize() !== 'custom';
    const length = this.chosenLength();
    for (const [key, field] of this.lengthFields) {
      const used = (key === 'maxSteps') === (length === 'steps');
      field.element.hidden = !used;
      field.input.disabled = !used;
    }
  }

  private changed(): void {
    const size = this.chosenSize();
    if (size !== 'custom') this.fillShape(size);
    this.showChosenParts();
    this.estimateSoon();
  }

  /** The job's config from the form (and the Data tab's conversion settings); throws naming bad fields. */
  private config(): Record<string, SettingValue> {
    const config: Record<string, SettingValue> = { ...this.dataView.convertConfig(), ...readSettings(this.otherFields) };
    const size = this.chosenSize();
    if (size === 'custom') Object.assign(config, readSettings(this.shapeFields.values()));
    else config.modelSize = size;
    Object.assign(config, this.lengthConfig());
    return config;
  }

  /**
   * Steps or epochs. gptmed-train stops at whichever of --max-steps and --num-epochs comes first, and
   * --num-epochs defaults to 10, so "400 steps" alone could stop sooner; every epoch is at least one
   * step, so asking for as many epochs as steps leaves the step count to decide.
   */
  private lengthConfig(): Record<string, SettingValue> {
    if (this.chosenLength() === 'epochs') {
      const epochs = this.lengthFields.get('numEpochs')?.read();
      return epochs === undefined ? {} : { numEpochs: epochs };
    }
    const steps = this.lengthFields.get('maxSteps')?.read();
    if (typeof steps !== 'number') throw new Error('Steps: say how many optimizer steps to train for (or choose epochs)');
    return { maxSteps: steps, numEpochs: steps };
  }

  private usableData(): boolean {
    return this.dataset !== null && this.dataset.conversionError === null && this.dataset.preview?.pairs !== 0;
  }

  private updateStartButton(): void {
    byId<HTMLButtonElement>('start-job').disabled = !this.usableData();
  }

  private async estimate(): Promise<void> {
    const out = byId('estimate');
    const pairs = this.dataset?.preview?.pairs;
    if (!this.visible || !pairs) {
      if (!pairs) replaceChildren(out, 'An estimate of the time shows once the data has been read.');
      return;
    }
    this.estimateRequest?.abort();
    const controller = new AbortController();
    this.estimateRequest = controller;
    out.removeAttribute('role');
    out.classList.add('busy');
    // The first estimate of a shape measures a few training steps on the server: it can take a while.
    if (!out.querySelector('#estimate-time')) replaceChildren(out, 'Estimating the time on this machine…');
    try {
      const e = await postJson<JobEstimate>('/v1/jobs/estimate', { config: this.config(), pairs }, controller.signal);
      replaceChildren(
        out,
        el('strong', { id: 'estimate-time' }, `About ${formatDuration(e.seconds)} on this machine`),
        `: ${formatCount(e.steps)} steps of ${formatCount(e.tokensPerStep)} tokens at ${formatRate(e.tokensPerSec)} tokens/s; ${formatParameters(e.parameters)} parameters.`,
        el('br'),
        el('span', { class: 'hint', id: 'estimate-basis' }, `Basis: ${e.basis}`),
      );
    } catch (err) {
      if (isAbort(err)) return;
      out.setAttribute('role', 'alert');
      replaceChildren(out, `No estimate: ${errorText(err)}`);
    } finally {
      if (this.estimateRequest === controller) {
        this.estimateRequest = null;
        out.classList.remove('busy');
      }
    }
  }

  private async start(): Promise<void> {
    const dataset = this.dataset;
    if (!dataset || !this.usableData()) return;
    const button = byId<HTMLButtonElement>('start-job');
    button.disabled = true;
    try {
      const config = this.config();
      const name = byId<HTMLInputElement>('job-name').value.trim();
      if (name) config.name = name;
      const form = new FormData();
      form.append('file', dataset.file, dataset.file.name);
      form.append('config', JSON.stringify(config));
      const job = await postForm<JobView>('/v1/jobs', form);
      clearError('start');
      byId<HTMLInputElement>('job-name').value = '';
      this.onStarted(job);
    } catch (err) {
      showError(err, 'Start', 'start');
    } finally {
      this.updateStartButton();
    }
  }
}
