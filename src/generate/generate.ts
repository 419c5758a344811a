/**
 * Answering one question: frame it exactly as training framed pairs
 * (`<bos> Q: question\nA:`), after any earlier turns of a conversation (each
 * a whole pair, back to back, as training packed pairs into rows), fit it
 * into the context, and draw --num-samples answers, each with its own seeded
 * generator so a question's answers do not depend on what was asked before it.
 * The answers are decoded together (decode.ts) but reported in sample order.
 */
import seedrandom from 'seedrandom';
import { UserError } from '../common/errors.js';
import { normalizeField } from '../convert/qa-format.js';
import type { QaPair } from '../convert/qa-format.js';
import { encodePair, encodePrompt } from '../dataset/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { decodeAnswers, fitPrompt, type Answer } from './decode.js';
import type { LoadedModel } from './load.js';
import { resolveOptions, type GenerationOptions, type GenerationRequest } from './options.js';
import { checkConversationSize, checkQuestionSize } from './question-size.js';

export interface GenerateOptions extends GenerationRequest {
  /** Incremental decoding with cached keys and values (default true; false only to compare). */
  useCache?: boolean;
  /** Streaming: called with each newly settled piece of an answer's text. */
  onText?: (text: string, sample: number) => void;
  /** Called with each answer as soon as it is complete. */
  onAnswer?: (answer: Answer, sample: number) => void;
  /** Earlier turns of a conversation, oldest first: framed as whole pairs before the question. */
  history?: readonly QaPair[];
  /** An answer ends before the first of these strings (none may be empty); its stop is 'stop'. */
  stop?: readonly string[];
  /** Abort to stop generating at once: the answer being drawn ends as 'aborted' (its text so far kept), and no more are drawn. */
  signal?: AbortSignal;
}

export interface GenerateResult {
  question: string;
  /** --num-samples answers (fewer when options.signal stopped it). */
  answers: Answer[];
  /** The first answer's text. */
  text: string;
  /** The options after defaults and preset were applied. */
  options: GenerationOptions;
  /** Prompt tokens fed to the model (after any cut). */
  promptTokens: number;
  /** Tokens cut from the left of a prompt too long for the context; 0 normally. */
  droppedPromptTokens: number;
}

/** The generator of sample `sample` for `seed`. */
export function sampleRng(seed: number, sample: number): seedrandom.PRNG {
  return seedrandom(`${seed}/${sample}`);
}

/** The prompt of `question` after the earlier pairs `history`: each pair's ids (encodePair), then encodePrompt's. */
export function encodeConversation(tokenizer: Tokenizer, question: string, history: readonly QaPair[] = []): number[] {
  return [...history.flatMap((pair) => encodePair(tokenizer, pair).ids), ...encodePrompt(tokenizer, question)];
}

export async function generate(lm: LoadedModel, question: string, options: GenerateOptions = {}): Promise<GenerateResult> {
  const opts = resolveOptions(options);
  const q = normalizeField(question);
  if (q === '') throw new UserError('the question is empty; ask something');
  checkQuestionSize(q);
  const history = (options.history ?? []).map((p) => ({ question: normalizeField(p.question), answer: normalizeField(p.answer) }));
  checkConversationSize([q, ...history.flatMap((p) => [p.question, p.answer])]);
  const stop = options.stop ?? [];
  if (stop.some((s) => s === '')) throw new UserError('a stop string is empty; give non-empty stop strings');
  const prompt = fitPrompt(encodeConversation(lm.tokenizer, q, history), lm.model.config.maxSeqLen, opts.maxNewTokens);
  const order = new SampleOrder(opts.numSamples, options.onText, options.onAnswer);
  const rngs = Array.from({ length: opts.numSamples }, (_, sample) => sampleRng(opts.seed, sample));
  await decodeAnswers(
    lm.model,
    lm.tokenizer,
    prompt.ids,
    { ...opts, useCache: options.useCache, onText: order.text, onAnswer: order.answer, stop, signal: options.signal },
    rngs,
  );
  const answers = order.answers;
  return { question: q, answers, text: answers[0].text, options: opts, promptTokens: prompt.ids.length, droppedPromptTokens: prompt.dropped };
}

/**
 * The samples' callbacks in sample order, as when they were decoded one after another (the CLI prints
 * each answer's text before the next one's header): a sample's text waits while an earlier sample is
 * still going, and comes at once when its turn comes. The answers end at the first aborted one, as
 * sequential decoding drew no answer after it.
 */
class SampleOrder {
  readonly answers: Answer[] = [];
  private turn = 0;
  private stopped = false;
  private readonly waitingText: string[][];
  private readonly ended: Array<Answer | undefined>;

  constructor(
    count: number,
    private readonly onText?: (text: string, sample: number) => void,
    private readonly onAnswer?: (answer: Answer, sample: number) => void,
  ) {
    this.waitingText = Array.from({ length: count }, () => []);
    this.ended = new Array<Answer | undefined>(count);
  }

  readonly text = (text: string, sample: number): void => {
    if (this.stopped) return;
    if (sample === this.turn) this.onText?.(text, sample);
    else this.waitingText[sample].push(text);
  };

  readonly answer = (answer: Answer, sample: number): void => {
    this.ended[sample] = answer;
    while (!this.stopped && this.ended[this.turn]) {
      const done = this.ended[this.turn]!;
      this.answers.push(done);
      this.onAnswer?.(done, this.turn);
      this.stopped = done.stop === 'aborted';
      this.turn++;
      if (this.stopped || this.turn >= this.ended.length) return;
      for (const text of this.waitingText[this.turn]) this.onText?.(text, this.turn);
      this.waitingText[this.turn] = [];
    }
  };
}
