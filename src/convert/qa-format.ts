/**
 * The Q&A text format, defined once. Every stage reads and writes Q&A text
 * through this module (MANUAL.md, "Q&A text format").
 *
 *   Q: question (may continue on following lines)
 *   A: answer (may span lines, and may contain blank lines)
 *   <blank line>
 *
 * A pair ends at a blank line that is followed by a `Q:` line or by the end
 * of the file, so answers keep their paragraphs; a question has no blank
 * lines. A question or answer line that itself begins with `Q:` or `A:`
 * (after any spaces) is written with one extra leading space, and that space
 * is removed when read back. Lines lose trailing whitespace; CRLF and a UTF-8
 * BOM are accepted.
 */
import { UserError } from '../common/errors.js';
import { LineSplitter, peekText, TextFileReader } from '../common/input.js';

export interface QaPair {
  question: string;
  answer: string;
}

/** A block that is not a well-formed pair, with the line it starts on (1-based). */
export interface MalformedBlock {
  line: number;
  reason: string;
}

export interface ParseOptions {
  /** Throw on the first malformed block instead of skipping it. */
  strict?: boolean;
  /** Name used in error messages. */
  source?: string;
}

const MARKER = /^ *[QA]:/;
const Q_LINE = /^Q:/;
const A_LINE = /^A:/;

/** Trailing whitespace off every line, CRLF to LF, leading and trailing blank lines off. */
export function normalizeField(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n').map((l) => l.trimEnd());
  while (lines.length > 0 && lines[0] === '') lines.shift();
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}

/**
 * A pair with both fields normalized; null when either is empty after that.
 * A blank line ends a question in this format, so blank lines inside a
 * question are removed (answers keep theirs).
 */
export function normalizePair(question: string, answer: string): QaPair | null {
  const q = normalizeField(question).replace(/\n{2,}/g, '\n');
  const a = normalizeField(answer);
  return q === '' || a === '' ? null : { question: q, answer: a };
}

function escapeLine(line: string): string {
  return MARKER.test(line) ? ` ${line}` : line;
}

function unescapeLine(line: string): string {
  return /^ +[QA]:/.test(line) ? line.slice(1) : line;
}

function writeField(marker: 'Q' | 'A', text: string): string {
  const [first, ...rest] = text.split('\n');
  // The first line follows the marker, so it needs no escaping; a leading
  // space on it would be eaten by the marker's separator, so keep it as is.
  return [`${marker}: ${first}`, ...rest.map((l) => (l === '' ? '' : escapeLine(l)))].join('\n');
}

/** One pair as Q&A text, ending with the blank line that separates pairs. */
export function formatQaPair(pair: QaPair): string {
  const p = normalizePair(pair.question, pair.answer);
  if (!p) throw new Error('formatQaPair: empty question or answer');
  return `${writeField('Q', p.question)}\n${writeField('A', p.answer)}\n\n`;
}

export function formatQa(pairs: Iterable<QaPair>): string {
  let out = '';
  for (const p of pairs) out += formatQaPair(p);
  return out;
}

/**
 * Incremental parser: feed lines in order, collect pairs as they complete.
 * Used by both the whole-text and the streaming readers.
 */
export class QaParser {
  readonly pairs: QaPair[] = [];
  readonly malformed: MalformedBlock[] = [];
  private readonly opts: ParseOptions;
  private state: 'none' | 'question' | 'answer' = 'none';
  private startLine = 0;
  private question: string[] = [];
  private answer: string[] = [];
  private junk: { line: number; text: string } | null = null;
  private blanks = 0;
  private lineNo = 0;

  constructor(opts: ParseOptions = {}) {
    this.opts = opts;
  }

  /** Feed the next line (without its newline). Completed pairs are pushed to `pairs`. */
  push(rawLine: string): void {
    this.lineNo++;
    let line = rawLine;
    if (this.lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    // trimEnd removes what /\s+$/ would (WhiteSpace and LineTerminator), without a regex.
    line = line.trimEnd();
    if (line === '') {
      this.blanks++;
      return;
    }
    if (Q_LINE.test(line)) {
      this.flush();
      this.state = 'question';
      this.startLine = this.lineNo;
      this.question = [line.replace(/^Q: ?/, '')];
      this.blanks = 0;
      return;
    }
    if (A_LINE.test(line) && this.state === 'question' && this.blanks === 0) {
      this.state = 'answer';
      this.answer = [line.replace(/^A: ?/, '')];
      return;
    }
    if (A_LINE.test(line) && (this.state === 'none' || this.blanks > 0 || this.state === 'answer')) {
      this.flush();
      this.bad(this.lineNo, 'answer (A:) without a question (Q:) before it');
      this.state = 'none';
      this.blanks = 0;
      return;
    }
    if (this.state === 'question' && this.blanks === 0) {
      this.question.push(unescapeLine(line));
    } else if (this.state === 'answer') {
      for (; this.blanks > 0; this.blanks--) this.answer.push('');
      this.answer.push(unescapeLine(line));
    } else {
      if (this.state === 'question') this.flush();
      if (!this.junk) this.junk = { line: this.lineNo, text: line };
      this.state = 'none';
    }
    this.blanks = 0;
  }

  /** Finish: the last block is completed or reported. */
  end(): void {
    this.flush();
  }

  private flush(): void {
    if (this.junk) {
      const snippet = this.junk.text.length > 40 ? `${this.junk.text.slice(0, 40)}...` : this.junk.text;
      this.bad(this.junk.line, `text outside a Q:/A: pair ("${snippet}")`);
      this.junk = null;
    }
    if (this.state === 'question') {
      this.bad(this.startLine, 'question (Q:) without an answer (A:)');
    } else if (this.state === 'answer') {
      const pair = normalizePair(this.question.join('\n'), this.answer.join('\n'));
      if (pair) this.pairs.push(pair);
      else this.bad(this.startLine, normalizeField(this.question.join('\n')) === '' ? 'empty question' : 'empty answer');
    }
    this.state = 'none';
    this.question = [];
    this.answer = [];
  }

  private bad(line: number, reason: string): void {
    if (this.opts.strict) {
      throw new UserError(`${this.opts.source ?? 'input'}:${line}: ${reason}; fix the block or use lenient mode to skip it`);
    }
    this.malformed.push({ line, reason });
  }
}

export interface ParseResult {
  pairs: QaPair[];
  malformed: MalformedBlock[];
}

/** Parse a whole Q&A text. */
export function parseQa(text: string, opts: ParseOptions = {}): ParseResult {
  const parser = new QaParser(opts);
  for (const line of text.split(/\r?\n/)) parser.push(line);
  parser.end();
  return { pairs: parser.pairs, malformed: parser.malformed };
}

/** Bytes read from the file at a time: large enough that the per-read cost vanishes, small enough to stay bounded. */
const READ_CHUNK = 1 << 20;

/**
 * Stream the pairs of a Q&A file with bounded memory. `onMalformed` sees each
 * skipped block in lenient mode; `onRead` the bytes read so far, for progress.
 * Lines are cut by hand (at LF, dropping the CR of a CRLF), as parseQa cuts
 * them: node:readline costs about eight times the parsing itself. Bytes that
 * are not UTF-8 stop the read with a line naming where they are.
 */
export async function* readQaFile(
  file: string,
  opts: ParseOptions & { onMalformed?: (m: MalformedBlock) => void; onRead?: (bytes: number) => void } = {},
): AsyncGenerator<QaPair> {
  const parser = new QaParser({ source: file, ...opts });
  const reader = new TextFileReader(file, { chunkBytes: READ_CHUNK });
  const splitter = new LineSplitter();
  const drain = function* (lines: string[]): Generator<QaPair> {
    for (const line of lines) parser.push(line);
    for (const m of parser.malformed.splice(0)) opts.onMalformed?.(m);
    yield* parser.pairs.splice(0);
  };
  for await (const text of reader.chunks()) {
    opts.onRead?.(reader.bytesRead);
    yield* drain(splitter.push(text));
  }
  for (const line of splitter.end()) parser.push(line);
  parser.end();
  yield* drain([]);
}

/** What an input of gptmed-train-tokenizer or gptmed-tokenize holds: Q&A text, plain text, or auto (startsWithQa). */
export const textInputFormats = ['auto', 'qa', 'text'] as const;
export type TextInputFormat = (typeof textInputFormats)[number];

/**
 * True when the file's first non-blank line starts with "Q:": how `--input-format auto` tells Q&A text
 * from plain text (gptmed-train-tokenizer and gptmed-tokenize alike).
 */
export function startsWithQa(file: string): boolean {
  const first = peekText(file, 65536).split(/\r?\n/).find((l) => l.trim() !== '');
  return first !== undefined && /^Q:/.test(first);
}
