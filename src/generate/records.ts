/**
 * The JSONL files of this stage, defined once (MANUAL.md, "gptmed-generate"
 * and "gptmed-evaluate"): one JSON object a line, UTF-8, `\n` line ends.
 */
import type { StopReason } from './stopping.js';

/** A line of `gptmed-generate --input-file` output: one answer (per sample) to one question. */
export interface AnswerRecord {
  question: string;
  answer: string;
  /** Which of --num-samples answers this is, from 0. */
  sample: number;
  stop: StopReason;
  /** Tokens generated, the end token included. */
  tokens: number;
  /** The file's answer, when the input was Q&A text. */
  reference?: string;
}

/** A line of `gptmed-evaluate` output. */
export interface EvaluationRecord {
  question: string;
  reference: string;
  answer: string;
  exactMatch: number;
  f1: number;
  stop: StopReason;
  tokens: number;
  /** Mean negative log-likelihood per token of the reference answer (its end token included). */
  referenceNll: number;
}

export function jsonLine(record: AnswerRecord | EvaluationRecord): string {
  return `${JSON.stringify(record)}\n`;
}
