/**
 * The text a model sees for a Q&A pair, defined once: the tokenizer trains on
 * pairText, the dataset frames pairs with it, generation prompts with
 * promptText (src/dataset/framing.ts adds <bos>/<eos> and encodes).
 *
 *   Q: question\nA: answer
 *
 * Unlike the Q&A file format (qa-format.ts) nothing is escaped and no blank
 * line follows: this is model input, never read back.
 */
import type { QaPair } from './qa-format.js';

/** The text a model sees before the answer; it ends at "A:" with no trailing space. */
export function promptText(question: string): string {
  return `Q: ${question}\nA:`;
}

/** A whole pair as text: the prompt, a space, the answer. */
export function pairText(pair: QaPair): string {
  return `${promptText(pair.question)} ${pair.answer}`;
}
