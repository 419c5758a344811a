/**
 * The decode loop: feed the framed prompt, then choose one token at a time
 * until the answer ends (stopping.ts). Several answers to one prompt
 * (--num-samples) are decoded together, one forward per step for all of
 * them (sequences.ts). With the KV cache each step feeds only the new
 * token; without it each step re-reads the whole sequence (kept for the
 * identity test and the benchmark).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { GPT } from '../model/gpt.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { nextToken, type Rng, type SamplingOptions } from './sampling.js';
import { openSequences, type ForwardChoice } from './sequences.js';
import { AnswerStream, answerState, cutAtStop, type StopReason } from './stopping.js';

/** An answer: its text, and the tokens behind it (with the start of a new `Q:` line when stop is 'question'). */
export interface Answer extends TokenLoopResult {
  /** The answer text: what follows `A:`, without the end token or a following `Q:` line. */
  text: string;
}

export interface FittedPrompt {
  ids: number[];
  /** Tokens cut from the left of the question to fit the context (0 when it fit). */
  dropped: number;
}

/**
 * Make room for the answer in the context window: at most half the context
 * is reserved for it (less when --max-new-tokens is smaller), and a longer
 * prompt loses tokens from its left, after the leading <bos>, so the end of
 * the question and the `A:` cue survive.
 */
export function fitPrompt(ids: readonly number[], maxSeqLen: number, maxNewTokens: number): FittedPrompt {
  const room = Math.min(maxNewTokens, Math.floor(maxSeqLen / 2));
  const budget = maxSeqLen - room;
  if (ids.length <= budget) return { ids: [...ids], dropped: 0 };
  return { ids: [ids[0], ...ids.slice(ids.length - (budget - 1))], dropped: ids.length - budget };
}

export interface DecodeSettings extends SamplingOptions {
  maxNewTokens: number;
  /** Incremental decoding with cached keys and values (default true). */
  useCache?: boolean;
  /** Which forward computes the logits (sequences.ts): 'auto' (default) or 'tfjs' (to compare). */
  forward?: ForwardChoice;
  /** Called with each newly settled piece of answer text, for streaming. */
  onText?: (text: string) => void;
  /** The answer ends before the first of these strings (stop 'stop'). */
  stop?: readonly string[];
  /** Checked before every step: once aborted, the answer ends at once (stop 'aborted'). */
  signal?: AbortSignal;
}

/** Ids that never belong inside an answer: padding, <bos>, <unk> (-1 where the tokenizer has none). */
function bannedIds(tokenizer: Tokenizer): number[] {
  const { pad, bos, unk } = tokenizer.specialIds;
  return [pad, bos, unk].filter((id) => id >= 0);
}

export interface TokenLoopResult {
  /** Tokens chosen after the prompt, the end token not included. */
  tokenIds: number[];
  stop: StopReason;
  /** Tokens the model produced, the end token included. */
  generatedTokens: number;
}


/** What the token loop needs of the tokenizer: the end token, and ids never chosen. */
export interface SpecialTokens {
  eos: number;
  banned: readonly number[];
}

/** One sequence in the token loop: its generator, its tokens so far, and its end once it has one. */
interface SequenceState {
  rng: Rng;
  onToken?: (tokenIds: readonly number[]) => boolean;
  tokenIds: number[];
  generated: number;
  stop: StopReason | null;
}

/** Choose a sequence's next token from its logits; its stop reason when that ends it, else null. */
function advance(seq: SequenceState, logits: Float32Array, settings: DecodeSettings, special: SpecialTokens, room: number): StopReason | null {
  const token = nextToken(logits, seq.tokenIds, settings, seq.rng, special.banned);
  seq.generated++;
  if (token === special.eos) return 'eos';
  seq.tokenIds.push(token);
  if (seq.onToken?.(seq.tokenIds)) return 'question';
  if (seq.generated >= settings.maxNewTokens) return 'length';
  if (seq.tokenIds.length >= room) return 'context';
  return null;
}

/**
 * The token loop under decodeAnswers: rngs.length sequences continue one prompt, each choosing tokens
 * until `eos`, the length limit, a full context, or until its onTokens[i] (given its tokens so far)
 * returns true, which ends it as 'question'. The sequences still going are extended together, one
 * forward per step (sequences.ts). Each step first yields to the event loop (other requests, a client's
 * disconnect, other generations interleave there), then ends every sequence still going as 'aborted'
 * if `settings.signal` was aborted. Each sequence draws from its own generator, so it gets the tokens
 * it gets when decoded alone. onEnd hears of each sequence as it ends.
 */
export async function decodeTokenBatch(
  model: GPT,
  promptIds: readonly number[],
  settings: DecodeSettings,
  rngs: readonly Rng[],
  special: SpecialTokens,
  onTokens: ReadonlyArray<((tokenIds: readonly number[]) => boolean) | undefined> = [],
  onEnd?: (sequence: number, result: TokenLoopResult) => void,
): Promise<TokenLoopResult[]> {
  const { maxSeqLen } = model.config;
  if (promptIds.length >= maxSeqLen) throw new Error(`decoding: a prompt of ${promptIds.length} tokens leaves no room in the context of ${maxSeqLen}`);
  const seqs: SequenceState[] = rngs.map((rng, i) => ({ rng, onToken: onTokens[i], tokenIds: [], generated: 0, stop: null }));
  const resultOf = (s: SequenceState): TokenLoopResult => ({ tokenIds: s.tokenIds, stop: s.stop ?? 'aborted', generatedTokens: s.generated });
  const endAll = (still: readonly number[]): TokenLoopResult[] => {
    for (const i of still) onEnd?.(i, resultOf(seqs[i]));
    return seqs.map(resultOf);
  };
  if (settings.signal?.aborted) return endAll(seqs.map((_, i) => i));
  const decoder = openSequences(model, seqs.length, settings);
  try {
    const first = await decoder.prompt(promptIds);
    let active = seqs.map((_, i) => i);
    let logits = active.map(() => first);
    for (;;) {
      active = active.filter((i, k) => {
        seqs[i].stop = advance(seqs[i], logits[k], settings, special, maxSeqLen - promptIds.length);
        if (seqs[i].stop !== null) onEnd?.(i, resultOf(seqs[i]));
        return seqs[i].stop === null;
      });
      if (active.length === 0) return seqs.map(resultOf);
      await nextTurn();
      // Sequences still going end as 'aborted' (resultOf gives them that stop).
      if (settings.signal?.aborted) return endAll(active);
      logits = await decoder.next(active, active.map((i) => seqs[i].tokenIds[seqs[i].tokenIds.length - 1]));
    }
  } finally {
    decoder.dispose();
  }
}

/** decodeTokenBatch for one sequence. */
export async function decodeTokens(
  model: GPT,
  promptIds: readonly number[],
  settings: DecodeSettings,
  rng: Rng,
  special: SpecialTokens,
  onToken?: (tokenIds: readonly number[]) => boolean,
): Promise<TokenLoopResult> {
  const [result] = await decodeTokenBatch(model, promptIds, settings, [rng], special, [onToken]);
  return result;
}

/** An answer's text as its tokens come: the stopping rule, stop strings, and streaming of settled text. */
class AnswerText {
  private readonly stream = new AnswerStream();
  text = '';
  stoppedByString = false;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly stops: readonly string[],
    private readonly onText?: (text: string) => void,
  ) {}

  /** For the token loop: take the tokens so far; true once the answer has ended. */
  readonly onToken = (tokenIds: readonly number[]): boolean => {
    let state = answerState(this.tokenizer.decode([...tokenIds]));
    if (this.stops.length > 0) {
      const cut = cutAtStop(state, this.stops);
      // Only a stop string shortens the text (it is never empty, and the text is trimmed).
      this.stoppedByString = cut.text !== state.text;
      state = cut;
    }
    this.text = state.text;
    if (this.onText) {
      const more = this.stream.push(state);
      if (more) this.onText(more);
    }
    return state.stopped;
  };

  /** The answer once the loop has ended it. */
  finish(result: TokenLoopResult): Answer {
    if (this.onText) {
      const rest = this.stream.finish(this.text);
      if (rest) this.onText(rest);
    }
    return { ...result, stop: this.stoppedByString ? 'stop' : result.stop, text: this.text };
  }
}

function specialTokens(tokenizer: Tokenizer): SpecialTokens {
  return { eos: tokenizer.specialIds.eos, banned: bannedIds(tokenizer) };
}

/** One answer to an already framed and fitted prompt. */
export async function decodeAnswer(model: GPT, tokenizer: Tokenizer, promptIds: readonly number[], settings: DecodeSettings, rng: Rng): Promise<Answer> {
  const answer = new AnswerText(tokenizer, settings.stop ?? [], settings.onText);
  return answer.finish(await decodeTokens(model, promptIds, settings, rng, specialTokens(tokenizer), answer.onToken));
}

/**
 * One answer per generator to an already framed and fitted prompt, decoded together. Text streams to
 * onText with the answer's index as it settles (the answers' pieces interleaved), and each answer goes
 * to onAnswer as it ends.
 */
export async function decodeAnswers(
  model: GPT,
  tokenizer: Tokenizer,
  promptIds: readonly number[],
  settings: Omit<DecodeSettings, 'onText'> & { onText?: (text: string, sample: number) => void; onAnswer?: (answer: Answer, sample: number) => void },
  rngs: readonly Rng[],
): Promise<Answer[]> {
  const { onText, onAnswer } = settings;
  const texts = rngs.map((_, i) => new AnswerText(tokenizer, settings.stop ?? [], onText && ((text) => onText(text, i))));
  const answers: Answer[] = [];
  const onEnd = (i: number, result: TokenLoopResult): void => {
    answers[i] = texts[i].finish(result);
    onAnswer?.(answers[i], i);
  };
  const loopSettings = { ...settings, onText: undefined };
  await decodeTokenBatch(model, promptIds, loopSettings, rngs, specialTokens(tokenizer), texts.map((t) => t.onToken), onEnd);
  return answers;
}
