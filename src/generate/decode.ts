/**
 * The decode loop: feed the framed prompt, then choose one token at a time
 * until the answer ends (stopping.ts). With the KV cache each step feeds only
 * the new token; without it each step re-reads the whole sequence (kept for
 * the identity test and the benchmark).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as tf from '@tensorflow/tfjs';
import type { GPT, KVCache } from '../model/gpt.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { nextToken, type Rng, type SamplingOptions } from './sampling.js';
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
  /** Called with each newly settled piece of answer text, for streaming. */
  onText?: (text: string) => void;
  /** The answer ends before the first of these strings (stop 'stop'). */
  stop?: readonly string[];
  /** Checked before every step: once aborted, the answer ends at once (stop 'aborted'). */
  signal?: AbortSignal;
}

/** Logits of the last position after feeding `ids` (the new tokens, when a cache is given). */
async function lastLogits(model: GPT, ids: readonly number[], cache?: KVCache): Promise<Float32Array> {
  const { vocabSize } = model.config;
  const last = tf.tidy(() => {
    const logits = model.forward(tf.tensor2d([...ids], [1, ids.length], 'int32'), { cache });
    return logits.slice([0, ids.length - 1, 0], [1, 1, vocabSize]).reshape([vocabSize]);
  });
  try {
    return (await last.data()) as Float32Array;
  } finally {
    last.dispose();
  }
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

/**
 * The token loop under decodeAnswer: choose tokens until `eos`, the length
 * limit, a full context, or until `onToken` (given the tokens so far)
 * returns true, which ends the answer as 'question'. Each step first yields
 * to the event loop (other requests, a client's disconnect, other generations
 * interleave there), then ends the answer as 'aborted' if `settings.signal` was aborted.
 */
export async function decodeTokens(
  model: GPT,
  promptIds: readonly number[],
  settings: DecodeSettings,
  rng: Rng,
  special: { eos: number; banned: readonly number[] },
  onToken?: (tokenIds: readonly number[]) => boolean,
): Promise<TokenLoopResult> {
  const { maxSeqLen } = model.config;
  if (promptIds.length >= maxSeqLen) throw new Error(`decodeTokens: prompt of ${promptIds.length} tokens leaves no room in the context of ${maxSeqLen}`);
  const cache = settings.useCache ?? true ? model.createCache(1) : undefined;
  const tokenIds: number[] = [];
  let generated = 0;
  try {
    if (settings.signal?.aborted) return { tokenIds, stop: 'aborted', generatedTokens: 0 };
    let logits = await lastLogits(model, promptIds, cache);
    for (;;) {
      const token = nextToken(logits, tokenIds, settings, rng, special.banned);
      generated++;
      if (token === special.eos) return { tokenIds, stop: 'eos', generatedTokens: generated };
      tokenIds.push(token);
      if (onToken?.(tokenIds)) return { tokenIds, stop: 'question', generatedTokens: generated };
      if (generated >= settings.maxNewTokens) return { tokenIds, stop: 'length', generatedTokens: generated };
      if (promptIds.length + tokenIds.length >= maxSeqLen) return { tokenIds, stop: 'context', generatedTokens: generated };
      await nextTurn();
      if (settings.signal?.aborted) return { tokenIds, stop: 'aborted', generatedTokens: generated };
      logits = await lastLogits(model, cache ? [token] : [...promptIds, ...tokenIds], cache);
    }
  } finally {
    cache?.dispose();
  }
}

/** One answer to an already framed and fitted prompt. */
export async function decodeAnswer(model: GPT, tokenizer: Tokenizer, promptIds: readonly number[], settings: DecodeSettings, rng: Rng): Promise<Answer> {
  const stream = new AnswerStream();
  const stops = settings.stop ?? [];
  let text = '';
  let stoppedByString = false;
  const onToken = (tokenIds: readonly number[]): boolean => {
    let state = answerState(tokenizer.decode([...tokenIds]));
    if (stops.length > 0) {
      const cut = cutAtStop(state, stops);
      // Only a stop string shortens the text (it is never empty, and the text is trimmed).
      stoppedByString = cut.text !== state.text;
      state = cut;
    }
    text = state.text;
    if (settings.onText) {
      const more = stream.push(state);
      if (more) settings.onText(more);
    }
    return state.stopped;
  };
  const result = await decodeTokens(model, promptIds, settings, rng, { eos: tokenizer.specialIds.eos, banned: bannedIds(tokenizer) }, onToken);
  if (settings.onText) {
    const rest = stream.finish(text);
    if (rest) settings.onText(rest);
  }
  return { ...result, stop: stoppedByString ? 'stop' : result.stop, text };
}
