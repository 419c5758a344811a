/**
 * The Data tab: pick or drop a data file, and see what conversion makes of it before anything trains
 * (POST /v1/datasets/preview): how many pairs, the first pairs exactly as they will be trained on, the
 * rows skipped with their line numbers and reasons, and how long the pairs are.
 */
import { ApiError, isAbort, postForm } from './api.js';
import { clearError, showError } from './alerts.js';
import { byId, debounce, el, replaceChildren } from './dom.js';
import { formatBytes, formatCount } from './format.js';
import { readSettings, settingField, type SettingField } from './settings-form.js';
import type { DatasetPreview, Options, SettingValue } from './types.js';

/** The file the next job trains on, and what the preview said of it. */
export interface Dataset {
  file: File;
  /** Null while the preview runs, or if it could not be made (the server is unreachable, say). */
  preview: DatasetPreview | null;
  /** The converter's own words when the file does not convert: a job on it would fail. */
  conversionError: string | null;
}

export class DataView {
  private readonly input = byId<HTMLInputElement>('data-file');
  private convertFields: SettingField[] = [];
  private file: File | null = null;
  private inFlight: AbortController | null = null;

  constructor(private readonly onDataset: (dataset: Dataset) => void) {
    this.input.addEventListener('change', () => {
      const file = this.input.files?.[0];
      if (file) this.pick(file);
    });
    this.acceptDrops(byId('drop-zone'));
  }

  /** The conversion settings (format, columns, encoding, ...) go here: they change what the preview shows. */
  buildSettings(options: Options): void {
    const convertOnly = options.training.settings.filter((s) => s.stages.every((stage) => stage === 'convert'));
    this.convertFields = convertOnly.map(settingField);
    const again = debounce(() => this.file && void this.preview(this.file), 500);
    const container = byId('convert-fields');
    replaceChildren(container, ...this.convertFields.map((f) => f.element));
    container.addEventListener('input', again);
    container.addEventListener('change', again);
  }

  /** The conversion settings the user changed; they are part of the job's config too. */
  convertConfig(): Record<string, SettingValue> {
    return readSettings(this.convertFields);
  }

  private acceptDrops(zone: HTMLElement): void {
    zone.addEventListener('dragover', (event) => {
      event.preventDefault();
      zone.classList.add('dragging');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      zone.classList.remove('dragging');
      const files = event.dataTransfer?.files;
      if (!files || files.length === 0) return;
      this.input.files = files; // the input then names the dropped file, as if it had been picked
      this.pick(files[0]);
    });
  }

  private pick(file: File): void {
    this.file = file;
    void this.preview(file);
  }

  private async preview(file: File): Promise<void> {
    this.inFlight?.abort();
    const controller = new AbortController();
    this.inFlight = controller;
    this.onDataset({ file, preview: null, conversionError: null });
    byId('preview-state').textContent = `Reading ${file.name}…`;
    try {
      const form = new FormData();
      form.append('file', file, file.name);
      const config = this.convertConfig();
      if (Object.keys(config).length > 0) form.append('config', JSON.stringify(config));
      const preview = await postForm<DatasetPreview>('/v1/datasets/preview', form, controller.signal);
      clearError('preview');
      renderPreview(preview);
      this.onDataset({ file, preview, conversionError: null });
    } catch (err) {
      if (isAbort(err)) return;
      // A 400 is the converter's one line about this file; anything else is about the server.
      const conversionError = err instanceof ApiError && err.status === 400 ? err.message : null;
      byId('preview').hidden = true;
      byId('preview-state').textContent = conversionError ? `${file.name} does not convert: ${conversionError}` : `No preview of ${file.name}.`;
      showError(err, 'Preview', 'preview');
      this.onDataset({ file, preview: null, conversionError });
    } finally {
      if (this.inFlight === controller) this.inFlight = null;
    }
  }
}

function renderPreview(p: DatasetPreview): void {
  byId('preview-state').textContent = `${p.filename} (${formatBytes(p.bytes)}, read as ${p.format})`;
  byId('preview-rows').textContent = formatCount(p.rowsRead);
  byId('preview-pairs').textContent = formatCount(p.pairs);
  const skippedTotal = Object.values(p.skipped).reduce((a, b) => a + b, 0);
  byId('preview-skipped').textContent = formatCount(skippedTotal);
  renderHistogram(p.lengths);
  renderSkipped(p, skippedTotal);
  renderFirstPairs(p);
  byId('preview').hidden = false;
}

/** Bars as plain elements (heights in %), so they scale with the column; each says its range and count. */
function renderHistogram(lengths: DatasetPreview['lengths']): void {
  const most = Math.max(1, ...lengths.histogram.map((b) => b.count));
  const bars = lengths.histogram.map((b) => {
    const what = `${formatCount(b.count)} pairs of ${b.from}–${b.to} ${lengths.unit}`;
    return el('div', { class: 'bar', style: `height: ${Math.max(b.count > 0 ? 2 : 0, (100 * b.count) / most)}%`, title: what });
  });
  const summary = `${lengths.unit} per pair: min ${lengths.min}, median ${lengths.p50}, 90% at most ${lengths.p90}, max ${lengths.max}`;
  replaceChildren(
    byId('preview-lengths'),
    el('div', { class: 'histogram', role: 'img', 'aria-label': `Histogram of pair lengths; ${summary}` }, ...bars),
    el('div', { class: 'histogram-axis', 'aria-hidden': 'true' }, el('span', {}, String(lengths.histogram[0]?.from ?? lengths.min)), el('span', {}, `${lengths.histogram.at(-1)?.to ?? lengths.max} ${lengths.unit}`)),
    el('p', { class: 'hint' }, summary),
  );
}

function renderSkipped(p: DatasetPreview, total: number): void {
  const reasons = Object.entries(p.skipped).map(([reason, n]) => `${reason}: ${formatCount(n)}`);
  const rows = p.skippedRows.map((r) => el('tr', {}, el('td', {}, r.at), el('td', {}, r.reason)));
  const listed = p.skippedRows.length < total ? el('p', { class: 'hint' }, `The first ${p.skippedRows.length} of ${formatCount(total)} are listed.`) : null;
  replaceChildren(
    byId('preview-skipped-rows'),
    total === 0
      ? el('p', {}, 'None: every row gave a pair.')
      : el('p', {}, reasons.join(', ')),
    rows.length > 0 ? el('table', { id: 'skipped-table' }, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Where'), el('th', { scope: 'col' }, 'Why'))), el('tbody', {}, ...rows)) : null,
    listed,
  );
}

function renderFirstPairs(p: DatasetPreview): void {
  const items = p.firstPairs.map((pair) => el('li', {}, el('pre', {}, pair.text)));
  replaceChildren(byId('preview-first'), ...items);
}
