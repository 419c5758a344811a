/**
 * The longest question worth encoding. A model reads a context of some
 * thousands of tokens, and a token covers a few bytes, so a question of
 * megabytes could only be cut from the left. Encoding it would still cost
 * SentencePiece's wasm heap first, and past some ten million characters that
 * heap runs out and the wasm aborts (a raw `Aborted()` line, then a dead
 * tokenizer): such questions are refused before encoding instead.
 */
import * as fs from 'node:fs';
import { UserError } from '../common/errors.js';

/** 1 MiB: 64 bytes a token for a context of 16384 tokens, far more than any question needs; encoded in about a second. */
export const MAX_QUESTION_BYTES = 1 << 20;

/** Why `question` is too long to ask ("is N bytes, ..."), or null when it is not. */
function tooLong(question: string): string | null {
  const bytes = Buffer.byteLength(question, 'utf8');
  if (bytes <= MAX_QUESTION_BYTES) return null;
  return `is ${bytes} bytes, more than any model's context could hold (at most ${MAX_QUESTION_BYTES} bytes)`;
}

/** Refuse a question too long for any model (generate, the library). */
export function checkQuestionSize(question: string): void {
  const problem = tooLong(question);
  if (problem) throw new UserError(`the question ${problem}; shorten it`);
}

/** Refuse a conversation (the question and earlier turns, `texts`) over the same limit in all. */
export function checkConversationSize(texts: readonly string[]): void {
  const bytes = texts.reduce((sum, t) => sum + Buffer.byteLength(t, 'utf8'), 0);
  if (bytes > MAX_QUESTION_BYTES) {
    throw new UserError(`the conversation is ${bytes} bytes, more than any model's context could hold (at most ${MAX_QUESTION_BYTES} bytes); shorten it`);
  }
}

/** Refuse the first question of `file` too long for any model, naming the line it stands on. */
export function checkQuestionSizes(file: string, questions: ReadonlyArray<{ question: string }>): void {
  for (const [i, { question }] of questions.entries()) {
    const problem = tooLong(question);
    if (!problem) continue;
    const line = lineOf(file, question);
    const where = line > 0 ? `${file}:${line}` : `${file}: question ${i + 1}`;
    throw new UserError(`${where}: this question ${problem}; shorten it, or check that the file holds one question a line`);
  }
}

/** Refuse a held-out pair (gptmed-evaluate) whose question or answer is too long to encode, naming the pair. */
export function checkPairSize(file: string, index: number, pair: { question: string; answer: string }): void {
  for (const field of ['question', 'answer'] as const) {
    const problem = tooLong(pair[field]);
    if (problem) throw new UserError(`${file}: pair ${index + 1}: its ${field} ${problem}; shorten it`);
  }
}

/** The 1-based line of `file` holding the longest line of `question` (0 if not found): where the user should look. */
function lineOf(file: string, question: string): number {
  const longest = question.split('\n').reduce((a, b) => (b.length > a.length ? b : a));
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  return lines.findIndex((l) => l.length >= longest.length && l.includes(longest)) + 1;
}
