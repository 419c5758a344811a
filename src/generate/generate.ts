/**
 * Answering one question: frame it exactly as training framed pairs
 * (`<bos> Q: question\nA:`), fit it into the context, and draw
 * --num-samples answers, each with its own seeded generator so a question's
 * answers do not depend on what was asked before it.
 */
import seedrandom from 'seedrandom';
import { UserError } from '../common/errors.js';
import { normalizeField } from '../convert/qa-format.js';
import { encodePrompt } from '../dataset/index.js';
import { decodeAnswer, fitPrompt, type Answer } from './decode.js';
import type { LoadedModel } from './load.js';
import { resolveOptions, type GenerationOptions, type GenerationRequest } from './options.js';
import { checkQuestionSize } from './question-size.js';

export interface GenerateOptions extends GenerationRequest {
  /** Incremental decoding with cached keys and values (default true; false only to compare). */
  useCache?: boolean;
  /** Streaming: called with each newly settled piece of an answer's text. */
  onText?: (text: string, sample: number) => void;
}

export interface GenerateResult {
  question: string;
  /** --num-samples answers. */
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

export async function generate(lm: LoadedModel, question: string, options: GenerateOptions = {}): Promise<GenerateResult> {
  const opts = resolveOptions(options);
  const q = normalizeField(question);
  if (q === '') throw new UserError('the question is empty; ask something');
  checkQuestionSize(q);
  const prompt = fitPrompt(encodePrompt(lm.tokenizer, q), lm.model.config.maxSeqLen, opts.maxNewTokens);
  const answers: Answer[] = [];
  for (let sample = 0; sample < opts.numSamples; sample++) {
    const onText = options.onText;
    answers.push(
      await decodeAnswer(
        lm.model,
        lm.tokenizer,
        prompt.ids,
        { ...opts, useCache: options.useCache, onText: onText && ((text) => onText(text, sample)) },
        sampleRng(opts.seed, sample),
      ),
    );
  }
  return { question: q, answers, text: answers[0].text, options: opts, promptTokens: prompt.ids.length, droppedPromptTokens: prompt.dropped };
}
