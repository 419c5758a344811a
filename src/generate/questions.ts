/**
 * The questions of `gptmed-generate --input-file`: either one question a line,
 * or Q&A text (MANUAL.md, "Q&A text format"), whose answers are then carried
 * along as references. A file whose first non-blank line starts with `Q:` is
 * Q&A text.
 */
import { UsageError, UserError } from '../common/errors.js';
import { checkTextFile, readTextFile } from '../common/input.js';
import { parseQa } from '../convert/qa-format.js';

export interface Question {
  question: string;
  /** The answer given in the file, when it is Q&A text. */
  reference?: string;
}

export interface QuestionFile {
  format: 'lines' | 'qa';
  questions: Question[];
  /** Blocks of Q&A text that were skipped, e.g. `line 12: question (Q:) without an answer (A:)`. */
  skipped: string[];
}

export function parseQuestions(text: string, source: string): QuestionFile {
  const body = text.replace(/^\uFEFF/, '');
  const firstLine = body.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  if (/^Q:/.test(firstLine)) {
    const { pairs, malformed } = parseQa(body, { source });
    if (pairs.length === 0) {
      throw new UserError(`${source}: looks like Q&A text but holds no complete Q:/A: pair; give one question a line, or Q&A text`);
    }
    return {
      format: 'qa',
      questions: pairs.map((p) => ({ question: p.question, reference: p.answer })),
      skipped: malformed.map((m) => `line ${m.line}: ${m.reason}`),
    };
  }
  const questions = body
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((question) => ({ question }));
  if (questions.length === 0) throw new UserError(`${source}: holds no question; write one question a line`);
  return { format: 'lines', questions, skipped: [] };
}

export function readQuestionFile(file: string): QuestionFile {
  checkTextFile(file, 'questions');
  return parseQuestions(readTextFile(file), file);
}

/**
 * Refuses a question given on the command line whose bytes were not UTF-8:
 * Node has already turned them into U+FFFD, so the model would be asked
 * something else than what was typed. Usage error, exit 2.
 */
export function checkPromptText(prompt: string, flag = '--prompt'): void {
  if (prompt.includes('\uFFFD')) {
    throw new UsageError(`${flag}: the question holds bytes that are not UTF-8 (they arrive as U+FFFD); pass the question in UTF-8 (check the terminal's or the script's encoding)`);
  }
}
