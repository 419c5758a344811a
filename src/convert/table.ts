/**
 * CSV and TSV files, streamed, including Anki's "Notes in Plain Text" export:
 * its leading `#key:value` lines (separator, html, columns, and which columns
 * hold the note type, deck, tags or guid) are read, not converted.
 */
import * as fs from 'node:fs';
import { peekText, TextFileReader, type TextEncoding } from '../common/input.js';
import { chooseColumns, type ColumnChoice } from './columns.js';
import { DelimitedParser, type DelimitedRecord } from './delimited.js';
import { stripHtml } from './html.js';
import { STREAM_CHUNK_BYTES, type Row, type RowSource } from './rows.js';

export interface TableOptions {
  /** ',' for CSV, '\t' for TSV; an Anki `#separator:` line overrides it. */
  delimiter: string;
  /** The first row names the columns (default true); ignored for Anki exports, which have none. */
  header?: boolean;
  questionCol?: string;
  answerCol?: string;
  /** Remove HTML from fields; default: only when an Anki export says `#html:true`. */
  stripHtml?: boolean;
  encoding?: TextEncoding;
  /** After "invalid UTF-8 at byte N;" */
  advice?: string;
}

/** The `#key:value` lines at the top of an Anki export. */
export interface AnkiHeader {
  separator?: string;
  html?: boolean;
  /** From `#columns:`, the column names. */
  columns?: string[];
  /** 0-based columns holding note type, deck, tags or guid rather than note fields. */
  metaColumns: number[];
  /** Lines the header takes at the start of the file. */
  lines: number;
}

const ANKI_SEPARATORS: Readonly<Record<string, string>> = {
  comma: ',',
  semicolon: ';',
  tab: '\t',
  space: ' ',
  pipe: '|',
  colon: ':',
};

const ANKI_LINE = /^#([a-z][a-z ]*):(.*)$/i;
/** Anki writes a few short lines; a header longer than this is not one. */
const ANKI_HEADER_PEEK = 64 * 1024;

/** True when the file starts like an Anki plain-text export. */
export function hasAnkiHeader(file: string, encoding?: TextEncoding): boolean {
  return readAnkiHeader(file, encoding).lines > 0;
}

export function readAnkiHeader(file: string, encoding?: TextEncoding): AnkiHeader {
  const head = peekText(file, ANKI_HEADER_PEEK, encoding);
  const header: AnkiHeader = { metaColumns: [], lines: 0 };
  const entries: Array<[string, string]> = [];
  // Only whole lines count: the peek may end inside one.
  for (let pos = 0, nl = head.indexOf('\n'); nl !== -1; pos = nl + 1, nl = head.indexOf('\n', pos)) {
    const m = ANKI_LINE.exec(head.slice(pos, nl).replace(/\r$/, ''));
    if (!m) break;
    entries.push([m[1].toLowerCase(), m[2]]);
    header.lines++;
  }
  if (header.lines === 0) return header;
  for (const [key, value] of entries) {
    if (key === 'separator') header.separator = ANKI_SEPARATORS[value.toLowerCase()] ?? value;
    else if (key === 'html') header.html = value.trim().toLowerCase() === 'true';
    else if (/^(notetype|deck|tags|guid) column$/.test(key) && /^[0-9]+$/.test(value.trim())) {
      header.metaColumns.push(Number(value) - 1);
    }
  }
  const columns = entries.find(([key]) => key === 'columns');
  if (columns) header.columns = columns[1].split(header.separator ?? '\t');
  return header;
}

/** The first two columns that hold note fields rather than Anki's metadata (1-based). */
function ankiDefaultColumns(meta: readonly number[]): [number, number] {
  const fields: number[] = [];
  for (let i = 0; fields.length < 2; i++) if (!meta.includes(i)) fields.push(i + 1);
  return [fields[0], fields[1]];
}

/** Drops the first `lines` lines of a text given in chunks. */
class HeaderSkipper {
  constructor(private lines: number) {}
  rest(chunk: string): string {
    let start = 0;
    while (this.lines > 0) {
      const nl = chunk.indexOf('\n', start);
      if (nl === -1) return '';
      start = nl + 1;
      this.lines--;
    }
    return start === 0 ? chunk : chunk.slice(start);
  }
}

export function readTable(file: string, opts: TableOptions): RowSource {
  const anki = readAnkiHeader(file, opts.encoding);
  const isAnki = anki.lines > 0;
  const delimiter = anki.separator ?? opts.delimiter;
  const strip = opts.stripHtml ?? anki.html ?? false;
  const total = fs.statSync(file).size;
  const reader = new TextFileReader(file, { encoding: opts.encoding, advice: opts.advice, chunkBytes: STREAM_CHUNK_BYTES });

  async function* batches(): AsyncGenerator<Row[]> {
    const parser = new DelimitedParser({ delimiter, source: file, firstLine: anki.lines + 1 });
    // Header names, when the file has them: Anki's `#columns:` line or the first row.
    let names: string[] | null = isAnki ? (anki.columns ?? null) : null;
    let needHeaderRow = !isAnki && opts.header !== false;
    let columns: ColumnChoice | null = null;
    const clean = strip ? stripHtml : (s: string) => s;

    const toRows = (records: DelimitedRecord[]): Row[] => {
      const rows: Row[] = [];
      for (const rec of records) {
        if (needHeaderRow) {
          needHeaderRow = false;
          names = rec.fields;
          columns = chooseColumns({ names, count: names.length }, opts, file);
          continue;
        }
        columns ??= chooseColumns(
          { names, count: names?.length ?? rec.fields.length },
          opts,
          file,
          isAnki ? ankiDefaultColumns(anki.metaColumns) : undefined,
        );
        const { question, answer } = columns;
        if (rec.fields.length <= Math.max(question, answer)) {
          rows.push({ pairs: [], skipped: ['missing column'], at: rec.line });
        } else {
          rows.push({ pairs: [{ question: clean(rec.fields[question]), answer: clean(rec.fields[answer]) }], skipped: [], at: rec.line });
        }
      }
      return rows;
    };

    // The whole file is decoded (and checked); the Anki header's lines are dropped from the text.
    const skipper = new HeaderSkipper(anki.lines);
    for await (const chunk of reader.chunks()) yield toRows(parser.push(skipper.rest(chunk)));
    yield toRows(parser.end());
  }

  return {
    unit: 'bytes',
    rowsAre: 'line',
    total,
    done: () => reader.bytesRead,
    batches,
  };
}
