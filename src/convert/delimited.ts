/**
 * Streaming CSV/TSV records (RFC 4180): fields in double quotes may hold the
 * delimiter, newlines and doubled quotes; CRLF, LF or CR end a record. The
 * parser takes text in chunks of any size, so memory is bounded by the
 * longest record, not by the file.
 */
import { UserError } from '../common/errors.js';

export interface DelimitedRecord {
  fields: string[];
  /** Line the record starts on (1-based). */
  line: number;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

/**
 * A record longer than this is almost certainly an opening quote that is never
 * closed; stop before it eats the memory.
 */
const MAX_RECORD_CHARS = 64 * 1024 * 1024;

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  // A lone CR (old Mac line end) inside a quoted field also starts a line.
  for (let i = s.indexOf('\r'); i !== -1; i = s.indexOf('\r', i + 1)) if (s.charCodeAt(i + 1) !== LF) n++;
  return n;
}

export class DelimitedParser {
  private readonly delimiter: number;
  private readonly source: string;
  private fields: string[] = [];
  private field = '';
  private recordChars = 0;
  private inQuotes = false;
  /** Just read a closing quote: a second quote right after it is a literal one. */
  private afterQuote = false;
  private atFieldStart = true;
  private skipLf = false;
  private started = false;
  private line: number;
  private recordLine: number;

  constructor(opts: { delimiter: string; source: string; firstLine?: number }) {
    if (opts.delimiter.length !== 1) throw new Error(`DelimitedParser: delimiter must be one character`);
    this.delimiter = opts.delimiter.charCodeAt(0);
    this.source = opts.source;
    this.line = opts.firstLine ?? 1;
    this.recordLine = this.line;
  }

  /** Feed the next chunk of text; returns the records it completed. */
  push(chunk: string): DelimitedRecord[] {
    const out: DelimitedRecord[] = [];
    const n = chunk.length;
    let i = 0;
    if (!this.started) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) i = 1;
    }
    if (this.skipLf && i < n) {
      this.skipLf = false;
      if (chunk.charCodeAt(i) === LF) i++;
    }
    while (i < n) {
      if (this.inQuotes) {
        const q = chunk.indexOf('"', i);
        const part = chunk.slice(i, q === -1 ? n : q);
        this.addText(part);
        this.line += countNewlines(part);
        if (q === -1) break;
        i = q + 1;
        this.inQuotes = false;
        this.afterQuote = true;
        continue;
      }
      const c = chunk.charCodeAt(i);
      if (this.afterQuote) {
        this.afterQuote = false;
        if (c === QUOTE) {
          this.addText('"');
          this.inQuotes = true;
          i++;
          continue;
        }
      }
      if (c === this.delimiter) {
        this.fields.push(this.field);
        this.field = '';
        this.atFieldStart = true;
        i++;
      } else if (c === LF || c === CR) {
        this.endRecord(out);
        this.line++;
        i++;
        if (c === CR) {
          if (i < n) {
            if (chunk.charCodeAt(i) === LF) i++;
          } else {
            this.skipLf = true;
          }
        }
      } else if (c === QUOTE && this.atFieldStart) {
        this.inQuotes = true;
        this.atFieldStart = false;
        i++;
      } else {
        // Plain text up to the next special character; a quote inside an
        // unquoted field is kept as a literal, as most writers expect.
        let j = i + 1;
        while (j < n) {
          const d = chunk.charCodeAt(j);
          if (d === this.delimiter || d === LF || d === CR) break;
          j++;
        }
        this.addText(chunk.slice(i, j));
        this.atFieldStart = false;
        i = j;
      }
    }
    return out;
  }

  /** The input is over: returns the last record, if the text did not end with a newline. */
  end(): DelimitedRecord[] {
    if (this.inQuotes) {
      throw new UserError(
        `${this.source}:${this.recordLine}: a quoted field that starts in this record is never closed; add the closing " (a quote inside a quoted field is written "")`,
      );
    }
    const out: DelimitedRecord[] = [];
    this.endRecord(out);
    return out;
  }

  private addText(s: string): void {
    this.field += s;
    this.recordChars += s.length;
    if (this.recordChars > MAX_RECORD_CHARS) {
      throw new UserError(
        `${this.source}:${this.recordLine}: a record longer than ${MAX_RECORD_CHARS >> 20} M characters; probably a quote (") that is never closed`,
      );
    }
  }

  private endRecord(out: DelimitedRecord[]): void {
    const blank = this.fields.length === 0 && this.field === '' && this.atFieldStart;
    if (!blank) {
      this.fields.push(this.field);
      out.push({ fields: this.fields, line: this.recordLine });
    }
    this.fields = [];
    this.field = '';
    this.recordChars = 0;
    this.atFieldStart = true;
    this.afterQuote = false;
    this.recordLine = this.line + 1;
  }
}

/** Parse a whole CSV/TSV text (tests and small inputs). */
export function parseDelimited(text: string, delimiter: string, source = 'input'): DelimitedRecord[] {
  const p = new DelimitedParser({ delimiter, source });
  return [...p.push(text), ...p.end()];
}
