/**
 * Measuring a model on held-out Q&A pairs: how likely it finds each
 * reference answer (answer perplexity, teacher-forced, the end token
 * included), and how close its own greedy answer is (exact match, token F1).
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import { checkSetting, type Setting } from '../common/settings.js';
import { checkTextFile } from '../common/input.js';
import { readQaFile, type QaPair } from '../convert/qa-format.js';
import { encodePair } from '../dataset/index.js';
import { weightedCrossEntropy, type GPT } from '../model/index.js';
import { fitPrompt } from './decode.js';
import { generate } from './generate.js';
import { checkPairSize } from './question-size.js';
import type { LoadedModel } from './load.js';
import { exactMatch, PerplexityMeter, tokenF1 } from './metrics.js';
import { generateConfig, resolveOptions, type GenerationOptions, type GenerationRequest } from './options.js';
import type { EvaluationRecord } from './records.js';
import type { StopReason } from './stopping.js';

/** How many pairs to evaluate (all when unset). */
export const limitSetting: Setting = { name: 'limit', type: 'integer', min: 1, description: 'evaluate only the first N pairs' };

export interface EvaluateOptions extends GenerationRequest {
  /** Only the first N pairs. */
  limit?: number;
  /** Called after each pair. */
  onProgress?: (done: number, total: number) => void;
}

export interface EvaluateReport {
  /** Pairs evaluated. */
  pairs: number;
  /** Blocks of the data file that were not well-formed pairs and were skipped. */
  skippedBlocks: number;
  /** exp(mean NLL per reference answer token); lower is better, 1 is perfect. */
  answerPerplexity: number;
  /** Reference answer tokens scored (end tokens included). */
  answerTokens: number;
  /** Pairs too long for the context: their prompt was cut from the left, or their answer scored only in part. */
  truncatedPairs: number;
  /** Mean exact match of the generated answers, 0..1. */
  exactMatch: number;
  /** Mean token F1 of the generated answers, 0..1. */
  tokenF1: number;
  /** How the generated answers ended (evaluate gives no stop strings or signal, so never 'stop' or 'aborted'). */
  stops: Record<Exclude<StopReason, 'stop' | 'aborted'>, number>;
  /** The generation options used (greedy by default). */
  options: GenerationOptions;
  seconds: number;
  /** Generated tokens per second, over the time spent generating. */
  tokensPerSecond: number;
  records: EvaluationRecord[];
}

interface ReferenceScore {
  sumNll: number;
  tokens: number;
  truncated: boolean;
}

/** Negative log-likelihood of a pair's answer tokens given its prompt, the pair fitted into the context. */
export async function scoreReference(model: GPT, ids: readonly number[], answerStart: number): Promise<ReferenceScore> {
  const { maxSeqLen } = model.config;
  const answer = ids.slice(answerStart);
  const prompt = fitPrompt(ids.slice(0, answerStart), maxSeqLen, answer.length);
  const kept = answer.slice(0, maxSeqLen - prompt.ids.length);
  const seq = [...prompt.ids, ...kept];
  const T = seq.length - 1;
  const nll = tf.tidy(() => {
    const logits = model.forward(tf.tensor2d(seq.slice(0, T), [1, T], 'int32'));
    const targets = tf.tensor2d(seq.slice(1), [1, T], 'int32');
    // Position t predicts seq[t + 1]; count only the answer's tokens.
    const weights = tf.tensor2d(Array.from({ length: T }, (_, t) => (t + 1 >= prompt.ids.length ? 1 : 0)), [1, T], 'float32');
    return weightedCrossEntropy(logits, targets, weights, 1);
  });
  // Read asynchronously: the webgpu backend has no synchronous read in Node.
  const sumNll = (await nll.data())[0]!;
  nll.dispose();
  return { sumNll, tokens: kept.length, truncated: prompt.dropped > 0 || kept.length < answer.length };
}

async function readPairs(file: string, limit: number): Promise<{ pairs: QaPair[]; skipped: number }> {
  checkTextFile(file, 'evaluation data');
  const pairs: QaPair[] = [];
  let skipped = 0;
  for await (const pair of readQaFile(file, { onMalformed: () => skipped++ })) {
    if (pairs.length >= limit) break;
    checkPairSize(file, pairs.length, pair);
    pairs.push(pair);
  }
  if (pairs.length === 0) throw new UserError(`${file}: no Q&A pairs found; give Q&A text (Q: ... / A: ...), e.g. the held-out file gptmed-tokenize --test-split wrote`);
  return { pairs, skipped };
}

/** Evaluate on a Q&A text file, or on pairs in memory. */
export async function evaluate(lm: LoadedModel, data: string | readonly QaPair[], options: EvaluateOptions = {}): Promise<EvaluateReport> {
  const { limit, onProgress, ...request } = options;
  if (limit !== undefined) checkSetting(limitSetting, limit, 'evaluation', true);
  const opts = resolveOptions({ preset: generateConfig().evaluate.preset, ...request, numSamples: 1 });
  const started = performance.now();
  const { pairs, skipped } = typeof data === 'string' ? await readPairs(data, limit ?? Infinity) : { pairs: data.slice(0, limit), skipped: 0 };
  if (pairs.length === 0) throw new UserError('no Q&A pairs to evaluate');
  const perplexity = new PerplexityMeter();
  const stops: EvaluateReport['stops'] = { eos: 0, question: 0, length: 0, context: 0 };
  const records: EvaluationRecord[] = [];
  let truncated = 0;
  let generated = 0;
  let generating = 0;
  let emSum = 0;
  let f1Sum = 0;
  for (const pair of pairs) {
    const { ids, answerStart } = encodePair(lm.tokenizer, pair);
    const score = await scoreReference(lm.model, ids, answerStart);
    perplexity.add(score.sumNll, score.tokens);
    if (score.truncated) truncated++;
    const t0 = performance.now();
    const { answers } = await generate(lm, pair.question, opts);
    generating += performance.now() - t0;
    const answer = answers[0];
    generated += answer.generatedTokens;
    stops[answer.stop as keyof EvaluateReport['stops']]++;
    const em = exactMatch(answer.text, pair.answer);
    const f1 = tokenF1(answer.text, pair.answer);
    emSum += em;
    f1Sum += f1;
    records.push({
      question: pair.question,
      reference: pair.answer,
      answer: answer.text,
      exactMatch: em,
      f1,
      stop: answer.stop,
      tokens: answer.generatedTokens,
      referenceNll: score.sumNll / score.tokens,
    });
    onProgress?.(records.length, pairs.length);
  }
  return {
    pairs: records.length,
    skippedBlocks: skipped,
    answerPerplexity: perplexity.perplexity,
    answerTokens: perplexity.tokenCount,
    truncatedPairs: truncated,
    exactMatch: emSum / records.length,
    tokenF1: f1Sum / records.length,
    stops,
    options: opts,
    seconds: (performance.now() - started) / 1000,
    tokensPerSecond: generating > 0 ? generated / (generating / 1000) : 0,
    records,
  };
}
