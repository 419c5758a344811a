/**
 * How a Q&A pair becomes text and tokens, defined once: the tokenizer trains
 * on pairText, tokenize writes encodePair, generate prompts with encodePrompt.
 *
 *   <bos> Q: question\nA: answer <eos>
 *
 * The prompt ends at "A:" with no trailing space; the answer's first piece
 * starts with "▁" (the space), and no piece spans a "▁" boundary, so the
 * prompt's ids are an exact prefix of the pair's ids (test/dataset/framing.test.ts
 * checks this, and the piecewise encoding below, on every pair of real data).
 */
import type { QaPair } from '../convert/qa-format.js';
import { UserError } from '../common/errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** The text a model sees before the answer. */
export function promptText(question: string): string {
  return `Q: ${question}\nA:`;
}

/** A whole pair as text: the prompt, a space, the answer. */
export function pairText(pair: QaPair): string {
  return `${promptText(pair.question)} ${pair.answer}`;
}

export interface EncodedPair {
  /** [bos, ...encode(pairText), eos] */
  ids: number[];
  /** Index of the first answer token; ids from here on (eos included) are the answer. */
  answerStart: number;
}

function requireFramingIds(tok: Tokenizer): void {
  if (tok.specialIds.bos < 0 || tok.specialIds.eos < 0) {
    throw new UserError(`${tok.modelPath}: the tokenizer has no <s>/</s> pieces to frame pairs; train it with gptmed-train-tokenizer on Q&A text`);
  }
}

export function encodePrompt(tok: Tokenizer, question: string): number[] {
  requireFramingIds(tok);
  return [tok.specialIds.bos, ...tok.encode(promptText(question))];
}

/**
 * Whether a pair can be encoded piecewise (prompt, then the answer line by
 * line) with the same result as encoding its whole text: true for the
 * tokenizers gptmed trains in Q&A mode, where no piece crosses a "\n" or
 * starts a word after a "▁". Shorter strings are much faster to encode.
 */
const piecewiseSafe = new WeakMap<Tokenizer, boolean>();
function canEncodePiecewise(tok: Tokenizer): boolean {
  let safe = piecewiseSafe.get(tok);
  if (safe === undefined) {
    const nl = tok.encode('\n');
    const probe: QaPair = { question: 'Why so?', answer: 'Line one,\n  two.\n\nThree' };
    const whole = tok.encode(pairText(probe));
    const parts = [...tok.encode(promptText(probe.question)), ...tok.encode(' Line one,'), ...nl, ...tok.encode('  two.'), ...nl, ...nl, ...tok.encode('Three')];
    safe = nl.length === 1 && whole.join() === parts.join();
    piecewiseSafe.set(tok, safe);
  }
  return safe;
}

export function encodePair(tok: Tokenizer, pair: QaPair): EncodedPair {
  requireFramingIds(tok);
  const prompt = tok.encode(promptText(pair.question));
  const answerStart = 1 + prompt.length;
  if (!canEncodePiecewise(tok)) {
    return { ids: [tok.specialIds.bos, ...tok.encode(pairText(pair)), tok.specialIds.eos], answerStart };
  }
  const ids = [tok.specialIds.bos, ...prompt];
  const nl = tok.encode('\n')[0];
  pair.answer.split('\n').forEach((line, i) => {
    if (i > 0) ids.push(nl);
    if (i === 0) ids.push(...tok.encode(` ${line}`));
    else if (line !== '') ids.push(...tok.encode(line));
  });
  ids.push(tok.specialIds.eos);
  return { ids, answerStart };
}
