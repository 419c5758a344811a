/**
 * gptmed-convert's work: read a table, JSON or SQLite file, filter the pairs,
 * and write them as Q&A text (qa-format.ts). CSV, TSV and JSONL are streamed;
 * the output is written to a temporary file and renamed into place.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AtomicFileWriter, refuseExisting } from '../common/atomic.js';
import { UsageError, UserError } from '../common/errors.js';
import { checkInputFile, isUtf16File, looksBinary, type TextEncoding, type TextReadOptions } from '../common/input.js';
import { Progress } from '../common/progress.js';
import { readJson, readJsonl } from './json.js';
import { formatQaPair, normalizeField, normalizePair, type QaPair } from './qa-format.js';
import { STREAM_CHUNK_BYTES, type Row, type RowSource } from './rows.js';
import { ShuffleSpool } from './shuffle.js';
import { isSqliteFile, readSqlite } from './sqlite.js';
import { hasAnkiHeader, readTable } from './table.js';

export const INPUT_FORMATS = ['csv', 'tsv', 'json', 'jsonl', 'sqlite'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

const EXTENSIONS: Readonly<Record<string, InputFormat>> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.tab': 'tsv',
  '.json': 'json',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.sqlite': 'sqlite',
  '.sqlite3': 'sqlite',
  '.db': 'sqlite',
  '.db3': 'sqlite',
};

export interface ConvertOptions {
  input: string;
  output: string;
  /** Default: from the input's extension (an Anki `.txt` export is TSV). */
  format?: InputFormat;
  /** CSV/TSV: the first row names the columns (default true). */
  header?: boolean;
  /** Column or field of the question: a name, or a 1-based index for tables. */
  questionCol?: string;
  answerCol?: string;
  /** CSV/TSV: remove HTML from fields (default: when an Anki export says `#html:true`). */
  stripHtml?: boolean;
  /** SQLite: the table to read, or a SELECT returning question and answer. */
  table?: string;
  query?: string;
  /** Text input: the encoding of a file without a byte order mark (default utf8). */
  encoding?: TextEncoding;
  /** Drop a pair whose question and answer both equal an earlier pair's. */
  dedupe?: boolean;
  minAnswerWords?: number;
  maxAnswerWords?: number;
  shuffle?: boolean;
  seed?: number;
  /** Add the pairs to an existing output instead of refusing it. */
  append?: boolean;
  force?: boolean;
  /** No progress lines. */
  quiet?: boolean;
  /** Sees each pair written and each row or pair skipped (gptmed-serve's dataset preview). */
  observer?: ConvertObserver;
}

export interface ConvertObserver {
  pair(pair: QaPair): void;
  /** `where`: "line 7", "element 3" or "row 12" (what the input's rows are). */
  skip(reason: string, where: string): void;
}

export interface ConvertSummary {
  input: string;
  output: string;
  format: InputFormat;
  rowsRead: number;
  pairsWritten: number;
  /** Pairs (or turns) not written, by reason. */
  skipped: Record<string, number>;
}

/** The input's format: `explicit`, else from its extension, else from its first bytes. */
export function detectFormat(file: string, explicit?: InputFormat, encoding?: TextEncoding): InputFormat {
  if (explicit) return explicit;
  const ext = path.extname(file).toLowerCase();
  const byName = EXTENSIONS[ext];
  if (byName) return byName;
  if (ext === '.txt' && hasAnkiHeader(file, encoding)) return 'tsv';
  if (isSqliteFile(file)) return 'sqlite';
  throw new UserError(`${file}: cannot tell the input format from its name; pass --format (${INPUT_FORMATS.join(', ')})`);
}

function checkOptions(o: ConvertOptions, format: InputFormat): void {
  for (const [flag, v] of [['--min-answer-words', o.minAnswerWords], ['--max-answer-words', o.maxAnswerWords]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new UsageError(`${flag} must be a whole number of words, 0 or more (got ${v})`);
  }
  if (o.minAnswerWords !== undefined && o.maxAnswerWords !== undefined && o.minAnswerWords > o.maxAnswerWords) {
    throw new UsageError(`--min-answer-words ${o.minAnswerWords} is above --max-answer-words ${o.maxAnswerWords}`);
  }
  if (format !== 'sqlite' && (o.table !== undefined || o.query !== undefined)) {
    throw new UsageError(`--table and --query are for SQLite input; ${o.input} is read as ${format}`);
  }
  if (format === 'sqlite' && o.encoding !== undefined) throw new UsageError(`--encoding is for text input; ${o.input} is read as sqlite`);
  if (o.query !== undefined && (o.table !== undefined || o.questionCol !== undefined || o.answerCol !== undefined)) {
    throw new UsageError('--query picks the question and answer itself; leave out --table, --question-col and --answer-col');
  }
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw new UsageError(`--seed must be a whole number (got ${o.seed})`);
}

function openSource(o: ConvertOptions, format: InputFormat): RowSource {
  const text: TextReadOptions = { encoding: o.encoding, advice: 'convert the file to UTF-8 or pass --encoding latin1' };
  switch (format) {
    case 'csv':
    case 'tsv':
      return readTable(o.input, { delimiter: format === 'csv' ? ',' : '\t', header: o.header, questionCol: o.questionCol, answerCol: o.answerCol, stripHtml: o.stripHtml, ...text });
    case 'json':
      return readJson(o.input, o, text);
    case 'jsonl':
      return readJsonl(o.input, o, text);
    case 'sqlite':
      return readSqlite(o.input, o);
  }
}

function countWords(text: string): number {
  const words = text.match(/\S+/g);
  return words ? words.length : 0;
}

/** The reason a candidate pair is not written, or the normalized pair. */
class PairFilter {
  private readonly seen = new Set<string>();
  constructor(private readonly o: ConvertOptions) {}

  check(candidate: QaPair): QaPair | string {
    const pair = normalizePair(candidate.question, candidate.answer);
    if (!pair) return normalizeField(candidate.question) === '' ? 'empty question' : 'empty answer';
    const { minAnswerWords: min, maxAnswerWords: max } = this.o;
    if (min !== undefined || max !== undefined) {
      const words = countWords(pair.answer);
      if (min !== undefined && words < min) return `answer under ${min} words`;
      if (max !== undefined && words > max) return `answer over ${max} words`;
    }
    if (this.o.dedupe) {
      // A 16-byte digest per pair keeps the memory small on large inputs.
      const key = createHash('sha256').update(pair.question).update('\0').update(pair.answer).digest('base64').slice(0, 22);
      if (this.seen.has(key)) return 'duplicate';
      this.seen.add(key);
    }
    return pair;
  }
}

/** Collects output text and writes it in large pieces. */
class OutputBuffer {
  private parts: string[] = [];
  private length = 0;
  constructor(private readonly writer: AtomicFileWriter) {}
  write(text: string): void {
    this.parts.push(text);
    this.length += text.length;
    if (this.length >= STREAM_CHUNK_BYTES) this.flush();
  }
  flush(): void {
    if (this.parts.length === 0) return;
    this.writer.write(this.parts.join(''));
    this.parts = [];
    this.length = 0;
  }
}

/** What an existing output needs before appended pairs so that they start a new block. */
function appendSeparator(file: string): string {
  const size = fs.statSync(file).size;
  if (size === 0) return '';
  const fd = fs.openSync(file, 'r');
  try {
    const tail = Buffer.alloc(Math.min(2, size));
    fs.readSync(fd, tail, 0, tail.length, size - tail.length);
    const text = tail.toString('latin1');
    return text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n';
  } finally {
    fs.closeSync(fd);
  }
}

function skippedText(skipped: Record<string, number>): string {
  const entries = Object.entries(skipped).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([reason, n]) => `${n} ${reason}`).join(', ') : 'none';
}

/** One line: rows read, pairs written, skipped by reason. */
export function formatSummary(s: ConvertSummary): string {
  return `${s.rowsRead} rows read (${s.format}), ${s.pairsWritten} pairs written to ${s.output}; skipped: ${skippedText(s.skipped)}`;
}

export async function convertFile(o: ConvertOptions): Promise<ConvertSummary> {
  checkInputFile(o.input);
  const format = detectFormat(o.input, o.format, o.encoding);
  checkOptions(o, format);
  // UTF-16 text is full of NUL bytes, which otherwise mark a binary file.
  if (format !== 'sqlite' && !isUtf16File(o.input, o.encoding) && looksBinary(o.input)) {
    throw new UserError(`${o.input}: looks like a binary file, not ${format} text; check the file or --format (UTF-16 without a byte order mark needs --encoding utf16)`);
  }
  if (path.resolve(o.input) === path.resolve(o.output)) throw new UserError(`${o.output}: the output would overwrite the input; choose another output`);
  // Before --force or --append get to it: neither can make a file of a directory.
  if (fs.statSync(o.output, { throwIfNoEntry: false })?.isDirectory()) throw new UserError(`${o.output}: is a directory; give the path of the Q&A text file to write`);
  if (!o.append) refuseExisting(o.output, Boolean(o.force));
  const appending = Boolean(o.append) && fs.existsSync(o.output);
  if (appending && looksBinary(o.output)) throw new UserError(`${o.output}: looks like a binary file, not Q&A text; refusing to --append to it`);

  const source = openSource(o, format);
  const filter = new PairFilter(o);
  const summary: ConvertSummary = { input: o.input, output: o.output, format, rowsRead: 0, pairsWritten: 0, skipped: {} };
  const observer = o.observer;
  const skip = (reason: string, row: Row): void => {
    summary.skipped[reason] = (summary.skipped[reason] ?? 0) + 1;
    observer?.skip(reason, `${source.rowsAre} ${row.at ?? '?'}`);
  };
  const writer = new AtomicFileWriter(o.output, { append: appending });
  const spool = o.shuffle ? new ShuffleSpool(o.output) : null;
  try {
    const out = new OutputBuffer(writer);
    if (appending) out.write(appendSeparator(o.output));
    let progress: Progress | null = null;
    for await (const rows of source.batches()) {
      progress ??= new Progress({
        label: `convert ${path.basename(o.input)}`,
        total: source.total,
        unit: source.unit === 'bytes' ? 'MB' : 'rows',
        scale: source.unit === 'bytes' ? 1e6 : 1,
        quiet: o.quiet,
      });
      for (const row of rows) {
        summary.rowsRead++;
        for (const reason of row.skipped) skip(reason, row);
        for (const candidate of row.pairs) {
          const result = filter.check(candidate);
          if (typeof result === 'string') {
            skip(result, row);
            continue;
          }
          observer?.pair(result);
          const block = formatQaPair(result);
          if (spool) spool.add(block);
          else out.write(block);
          summary.pairsWritten++;
        }
      }
      progress.update(source.done(), { pairs: summary.pairsWritten });
    }
    if (summary.pairsWritten === 0) {
      throw new UserError(
        `${o.input}: no Q&A pairs found (${summary.rowsRead} rows read; skipped: ${skippedText(summary.skipped)}); check the columns (--question-col, --answer-col) and filters`,
      );
    }
    if (spool) for (const block of spool.drain(o.seed ?? 0)) out.write(block);
    out.flush();
    writer.commit();
    progress?.finish({ pairs: summary.pairsWritten });
    return summary;
  } catch (err) {
    writer.abort();
    throw err;
  } finally {
    spool?.dispose();
  }
}
