/**
 * The Playground tab: ask a model questions and watch the answer stream in (POST /v1/chat/completions,
 * stream: true with usage), with the sampling settings beside the conversation. A preset (GET /v1/options
 * generation.presets) fills the settings, which stay editable. Under each answer: why it stopped
 * (finish_reason) and how fast it came. Earlier turns are sent along, so follow-up questions work.
 */
import { ApiError, apiFetch, isAbort, readEvents } from './api.js';
import { errorText } from './alerts.js';
import { byId, el, replaceChildren } from './dom.js';
import { formatRate } from './format.js';
import type { ModelInfo, Options, SamplingSettings } from './types.js';

/** The sampling inputs beside the conversation, by the request field each one fills. */
const SAMPLING_INPUTS = {
  temperature: 'play-temperature',
  top_k: 'play-top-k',
  top_p: 'play-top-p',
  repetition_penalty: 'play-repetition-penalty',
  no_repeat_ngram: 'play-no-repeat-ngram',
  max_tokens: 'play-max-tokens',
  seed: 'play-seed',
} as const;
type SamplingField = keyof typeof SAMPLING_INPUTS;

/** How a preset's settings map onto the request fields. */
const PRESET_FIELDS: Array<[keyof SamplingSettings, SamplingField]> = [
  ['temperature', 'temperature'],
  ['topK', 'top_k'],
  ['topP', 'top_p'],
  ['repetitionPenalty', 'repetition_penalty'],
  ['noRepeatNgram', 'no_repeat_ngram'],
];

interface Turn {
  question: string;
  answer: string;
  /** True once the answer came whole: only those are sent back as earlier turns. */
  complete: boolean;
}

interface ChatChunk {
  choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>;
  usage?: { completion_tokens: number };
  error?: { message: string };
}

const input = (id: string): HTMLInputElement => byId<HTMLInputElement>(id);

export class PlaygroundView {
  private readonly modelSelect = byId<HTMLSelectElement>('play-model');
  private readonly presetSelect = byId<HTMLSelectElement>('play-preset');
  private readonly question = byId<HTMLTextAreaElement>('play-question');
  private presets: Record<string, SamplingSettings> = {};
  private turns: Turn[] = [];
  private generating: AbortController | null = null;
  private preferred: string | null = null;

  constructor() {
    byId('play-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.ask();
    });
    // Enter asks, Shift+Enter is a new line, as in most chat boxes.
    this.question.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        void this.ask();
      }
    });
    byId('play-stop').addEventListener('click', () => this.generating?.abort());
    byId('play-clear').addEventListener('click', () => this.clear());
    this.presetSelect.addEventListener('change', () => this.applyPreset(this.presetSelect.value));
    byId('play-sampling').addEventListener('input', (event) => {
      if (event.target !== this.presetSelect) this.markPresetEdited();
    });
    this.updateButtons();
  }

  build(options: Options): void {
    this.presets = options.generation.presets;
    const d = options.generation.defaults;
    replaceChildren(this.presetSelect, ...Object.keys(this.presets).map((name) => el('option', { value: name }, name)), el('option', { value: 'custom' }, 'custom (edited)'));
    input(SAMPLING_INPUTS.max_tokens).value = String(d.maxNewTokens);
    input(SAMPLING_INPUTS.seed).value = String(d.seed);
    const start = Object.keys(this.presets).find((name) => PRESET_FIELDS.every(([k]) => this.presets[name][k] === d[k]));
    if (start) this.applyPreset(start);
    else {
      for (const [key, field] of PRESET_FIELDS) input(SAMPLING_INPUTS[field]).value = String(d[key]);
      this.presetSelect.value = 'custom';
    }
  }

  /** The models to choose from; keeps the current choice, else the newest model. */
  setModels(models: ModelInfo[]): void {
    const current = this.preferred ?? this.modelSelect.value;
    replaceChildren(this.modelSelect, ...models.map((m) => el('option', { value: m.id }, m.id)));
    const newest = models.reduce<ModelInfo | null>((a, m) => (a && a.created >= m.created ? a : m), null);
    if (models.some((m) => m.id === current)) {
      this.modelSelect.value = current;
      this.preferred = null;
    } else if (newest) this.modelSelect.value = newest.id;
    byId('play-no-models').hidden = models.length > 0;
    this.updateButtons();
  }

  /** Ask this model next (from a model's card, or a job just finished); applied once it is listed. */
  useModel(id: string): void {
    this.preferred = id;
    if ([...this.modelSelect.options].some((o) => o.value === id)) this.modelSelect.value = id;
  }

  private applyPreset(name: string): void {
    const preset = this.presets[name];
    if (!preset) return;
    this.presetSelect.value = name;
    for (const [key, field] of PRESET_FIELDS) input(SAMPLING_INPUTS[field]).value = String(preset[key]);
  }

  private markPresetEdited(): void {
    const preset = this.presets[this.presetSelect.value];
    if (preset && PRESET_FIELDS.some(([key, field]) => Number(input(SAMPLING_INPUTS[field]).value) !== preset[key])) this.presetSelect.value = 'custom';
  }

  /** The sampling fields of the request; an empty input is left out (the server's default). */
  private sampling(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [field, id] of Object.entries(SAMPLING_INPUTS)) {
      const text = input(id).value.trim();
      if (text === '') continue;
      const n = Number(text);
      if (!Number.isFinite(n)) throw new Error(`${field}: "${text}" is not a number`);
      out[field] = n;
    }
    return out;
  }

  private messages(question: string): Array<{ role: 'user' | 'assistant'; content: string }> {
    const earlier = this.turns.filter((t) => t.complete).flatMap((t) => [
      { role: 'user' as const, content: t.question },
      { role: 'assistant' as const, content: t.answer },
    ]);
    return [...earlier, { role: 'user', content: question }];
  }

  private async ask(): Promise<void> {
    const question = this.question.value.trim();
    const model = this.modelSelect.value;
    if (!question || !model || this.generating) return;
    const view = this.addTurnElement(question);
    let body: string;
    try {
      body = JSON.stringify({ model, messages: this.messages(question), stream: true, stream_options: { include_usage: true }, ...this.sampling() });
    } catch (err) {
      view.meta.textContent = errorText(err);
      view.meta.setAttribute('role', 'alert');
      return;
    }
    const turn: Turn = { question, answer: '', complete: false };
    this.turns.push(turn);
    this.question.value = '';
    this.generating = new AbortController();
    this.updateButtons();
    try {
      await this.stream(body, turn, view, this.generating.signal);
    } finally {
      this.generating = null;
      view.answer.removeAttribute('aria-busy');
      this.updateButtons();
      this.question.focus();
    }
  }

  private async stream(body: string, turn: Turn, view: TurnElements, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    let finish: string | null = null;
    let tokens: number | null = null;
    try {
      const response = await apiFetch('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal });
      for await (const event of readEvents(response.body!)) {
        if (event.data === '[DONE]') break;
        const chunk = JSON.parse(event.data) as ChatChunk;
        if (chunk.error) throw new ApiError(chunk.error.message, 500);
        for (const choice of chunk.choices ?? []) {
          if (choice.delta?.content) {
            turn.answer += choice.delta.content;
            view.answer.textContent = turn.answer;
          }
          finish = choice.finish_reason ?? finish;
        }
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
      }
      turn.complete = finish !== null;
      view.meta.textContent = answerFacts(finish, tokens, (performance.now() - started) / 1000);
    } catch (err) {
      view.meta.textContent = isAbort(err) ? 'Stopped.' : errorText(err);
      if (!isAbort(err)) view.meta.setAttribute('role', 'alert');
    }
  }

  private addTurnElement(question: string): TurnElements {
    const answer = el('p', { class: 'answer', 'aria-busy': 'true' });
    const meta = el('p', { class: 'answer-meta hint' });
    byId('play-turns').append(el('li', { class: 'turn' }, el('p', { class: 'question' }, question), answer, meta));
    answer.scrollIntoView({ block: 'nearest' });
    return { answer, meta };
  }

  private clear(): void {
    this.generating?.abort();
    this.turns = [];
    byId('play-turns').replaceChildren();
    this.question.focus();
  }

  private updateButtons(): void {
    byId<HTMLButtonElement>('play-send').disabled = this.generating !== null || this.modelSelect.value === '';
    byId<HTMLButtonElement>('play-stop').disabled = this.generating === null;
  }
}

interface TurnElements {
  answer: HTMLElement;
  meta: HTMLElement;
}

/** "finish: stop · 23 tokens in 0.41 s · 56 tokens/s". */
function answerFacts(finish: string | null, tokens: number | null, seconds: number): string {
  const parts = [`finish: ${finish ?? 'unknown'}`];
  if (tokens !== null) parts.push(`${tokens} tokens in ${seconds.toFixed(2)} s`, `${formatRate(tokens / Math.max(seconds, 1e-3))} tokens/s`);
  return parts.join(' · ');
}
