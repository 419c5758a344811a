/**
 * How a Q&A pair becomes tokens, defined once: tokenize writes encodePair
 * (PairEncoder, pair-encoder.ts, gives the same ids faster), generate prompts
 * with encodePrompt. The text is src/convert/pair-text.ts's:
 *
 *   <bos> Q: question\nA: answer <eos>
 *
 * The prompt ends at "A:" with no trailing space; the answer's first piece
 * starts with "▁" (the space), and no piece spans a "▁" boundary, so the
 * prompt's ids are an exact prefix of the pair's ids (test/dataset/framing.test.ts
 * checks this, and the two-part encoding below, on every pair of real data).
 */
import { pairText, promptText } from '../convert/pair-text.js';
import type { QaPair } from '../convert/qa-format.js';
import { UserError } from '../common/errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface EncodedPair {
  /** [bos, ...encode(pairText), eos] */
  ids: number[];
  /** Index of the first answer token; ids from here on (eos included) are the answer. */
  answerStart: number;
}

/** Pairs are framed by <s> and </s>: a tokenizer without them cannot frame any. */
export function requireFramingIds(tok: Tokenizer): void {
  if (tok.specialIds.bos < 0 || tok.specialIds.eos < 0) {
    throw new UserError(`${tok.modelPath}: the tokenizer has no <s>/</s> pieces to frame pairs; train it with gptmed-train-tokenizer on Q&A text`);
  }
}

export function encodePrompt(tok: Tokenizer, question: string): number[] {
  requireFramingIds(tok);
  return [tok.specialIds.bos, ...tok.encode(promptText(question))];
}

/**
 * Whether a pair can be encoded in two calls (prompt, then " " + answer) with
 * the same result as its whole text: true for SentencePiece models, where no
 * piece spans the "▁" that starts the answer, unless a custom normalizer
 * treats a leading space differently. Checked once per tokenizer on a probe.
 */
const twoPartSafe = new WeakMap<Tokenizer, boolean>();
function canEncodeInTwoParts(tok: Tokenizer): boolean {
  let safe = twoPartSafe.get(tok);
  if (safe === undefined) {
    const probe: QaPair = { question: 'Why so?', answer: 'Line one,\n  two.' };
    const parts = [...tok.encode(promptText(probe.question)), ...tok.encode(` ${probe.answer}`)];
    safe = tok.encode(pairText(probe)).join() === parts.join();
    twoPartSafe.set(tok, safe);
  }
  return safe;
}

export function encodePair(tok: Tokenizer, pair: QaPair): EncodedPair {
  requireFramingIds(tok);
  const prompt = tok.encode(promptText(pair.question));
  const rest = canEncodeInTwoParts(tok) ? [...prompt, ...tok.encode(` ${pair.answer}`)] : tok.encode(pairText(pair));
  return { ids: [tok.specialIds.bos, ...rest, tok.specialIds.eos], answerStart: 1 + prompt.length };
}
