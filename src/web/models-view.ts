/**
 * The Models tab: every model the server answers with (GET /v1/models) with its size (the preset its
 * shape matches, else "custom"), parameters, best val loss, step and date; its checkpoint to download
 * (GET /v1/models/:id/checkpoint) and its exports (gguf, hf) to make and download
 * (POST/GET /v1/models/:id/exports). Downloads go through fetch so they carry the API key.
 */
import { download, getJson, postJson } from './api.js';
import { clearError, showError } from './alerts.js';
import { byId, el, replaceChildren } from './dom.js';
import { formatBytes, formatCount, formatDate, formatLoss, formatParameters } from './format.js';
import { sizeName } from './options.js';
import type { ModelExport, ModelInfo, ModelSize } from './types.js';

export class ModelsView {
  private models: ModelInfo[] = [];
  private sizes: ModelSize[] = [];

  constructor(
    /** Told the models after each listing (the playground offers the same ones). */
    private readonly onModels: (models: ModelInfo[]) => void,
    /** "Ask it" on a model's card. */
    private readonly onTry: (id: string) => void,
  ) {}

  setSizes(sizes: ModelSize[]): void {
    this.sizes = sizes;
    this.render();
  }

  async refresh(): Promise<void> {
    try {
      this.models = (await getJson<{ data: ModelInfo[] }>('/v1/models')).data;
      clearError('models');
    } catch (err) {
      showError(err, 'Listing the models', 'models');
      return;
    }
    this.render();
    this.onModels(this.models);
  }

  private render(): void {
    const list = byId('model-list');
    list.dataset.loaded = 'true';
    if (this.models.length === 0) {
      replaceChildren(list, el('p', { id: 'no-models' }, 'No models yet: a job that finishes training becomes one.'));
      return;
    }
    const newestFirst = [...this.models].sort((a, b) => b.created - a.created);
    replaceChildren(list, ...newestFirst.map((m) => this.card(m)));
  }

  private card(m: ModelInfo): HTMLElement {
    const facts: Array<[string, string]> = [
      ['Size', this.sizes.length > 0 ? sizeName(m.model_config, this.sizes) : '…'],
      ['Parameters', `${formatParameters(m.parameters)} (${formatCount(m.parameters)})`],
      ['Best val loss', formatLoss(m.val_loss)],
      ['Step', formatCount(m.step)],
      ['Context', `${m.context_length} tokens`],
      ['Saved', formatDate(new Date(m.created * 1000))],
    ];
    const checkpoint = el('button', { type: 'button' }, 'Download checkpoint');
    checkpoint.addEventListener('click', () => void this.downloading(checkpoint, `/v1/models/${encodeURIComponent(m.id)}/checkpoint`, `${m.id}.tar`));
    const tryIt = el('button', { type: 'button' }, 'Ask it');
    tryIt.addEventListener('click', () => this.onTry(m.id));
    return el(
      'article',
      { class: 'model-card', 'data-model': m.id },
      el('h3', {}, m.id),
      el('dl', { class: 'facts' }, ...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
      el('div', { class: 'actions' }, tryIt, checkpoint),
      this.exportsSection(m.id),
    );
  }

  /** Listed when opened (one request per model otherwise); a new export is made from the same place. */
  private exportsSection(id: string): HTMLElement {
    const list = el('ul', { class: 'exports' });
    const format = el('select', { 'aria-label': `Export format for ${id}` }, el('option', { value: 'gguf' }, 'gguf (llama.cpp)'), el('option', { value: 'hf' }, 'hf (transformers)'));
    const dtype = el('select', { 'aria-label': `Number type for ${id}` }, el('option', { value: 'f32' }, 'f32'), el('option', { value: 'f16' }, 'f16'));
    const make = el('button', { type: 'button' }, 'Export');
    const details = el('details', {}, el('summary', {}, 'Exports'), list, el('div', { class: 'actions' }, format, dtype, make));
    details.addEventListener('toggle', () => details.open && void this.listExports(id, list));
    make.addEventListener('click', () => void this.makeExport(id, format.value, dtype.value, make, list));
    return details;
  }

  private async listExports(id: string, list: HTMLElement): Promise<void> {
    try {
      const exports = (await getJson<{ data: ModelExport[] }>(`/v1/models/${encodeURIComponent(id)}/exports`)).data;
      clearError('exports');
      const items = exports.map((x) => {
        const get = el('button', { type: 'button', class: 'link' }, `Download ${x.file}`);
        get.addEventListener('click', () => void this.downloading(get, x.url, x.file));
        return el('li', {}, `${x.format} ${x.dtype}, ${formatBytes(x.bytes)} `, get);
      });
      replaceChildren(list, ...(items.length > 0 ? items : [el('li', { class: 'hint' }, 'None yet.')]));
    } catch (err) {
      showError(err, `Listing the exports of ${id}`, 'exports');
    }
  }

  private async makeExport(id: string, format: string, dtype: string, button: HTMLButtonElement, list: HTMLElement): Promise<void> {
    button.disabled = true;
    button.textContent = 'Exporting…';
    try {
      await postJson<ModelExport>(`/v1/models/${encodeURIComponent(id)}/exports`, { format, dtype });
      clearError('export');
      await this.listExports(id, list);
    } catch (err) {
      showError(err, `Exporting ${id}`, 'export');
    } finally {
      button.disabled = false;
      button.textContent = 'Export';
    }
  }

  private async downloading(button: HTMLButtonElement, path: string, name: string): Promise<void> {
    button.disabled = true;
    try {
      await download(path, name);
      clearError('download');
    } catch (err) {
      showError(err, `Downloading ${name}`, 'download');
    } finally {
      button.disabled = false;
    }
  }
}
