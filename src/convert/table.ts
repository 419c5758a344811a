/**
 * CSV and TSV files, streamed, including Anki's "Notes in Plain Text" export:
 * its leading `#key:value` lines (separator, html, columns, and which columns
 * hold the note type, deck, tags or guid) are read, not converted.
 */
import * as fs from 'node:fs';
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
}

/** The `#key:value` lines at the top of an Anki export. */
export interface AnkiHeader {
  separator?: string;
  html?: boolean;
  /** From `#columns:`, the column names. */
  columns?: string[];
  /** 0-based columns holding note type, deck, tags or guid rather than note fields. */
  metaColumns: number[];
  /** Bytes and lines the header takes at the start of the file (BOM included). */
  bytes: number;
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
export function hasAnkiHeader(file: string): boolean {
  return readAnkiHeader(file).lines > 0;
}

export function readAnkiHeader(file: string): AnkiHeader {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(ANKI_HEADER_PEEK);
  let n: number;
  try {
    n = fs.readSync(fd, buf, 0, buf.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  const header: AnkiHeader = { metaColumns: [], bytes: 0, lines: 0 };
  let pos = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  const entries: Array<[string, string]> = [];
  for (;;) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl === -1 || nl >= n) break;
    const line = buf.toString('utf8', pos, nl).replace(/\r$/, '');
    const m = ANKI_LINE.exec(line);
    if (!m) break;
    entries.push([m[1].toLowerCase(), m[2]]);
    pos = nl + 1;
    header.lines++;
  }
  if (header.lines === 0) return header;
  header.bytes = pos;
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

export function readTable(file: string, opts: TableOptions): RowSource {
  const anki = readAnkiHeader(file);
  const isAnki = anki.lines > 0;
  const delimiter = anki.separator ?? opts.delimiter;
  const strip = opts.stripHtml ?? anki.html ?? false;
  const total = fs.statSync(file).size;
  let stream: fs.ReadStream | null = null;

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
          rows.push({ pairs: [], skipped: ['missing column'] });
        } else {
          rows.push({ pairs: [{ question: clean(rec.fields[question]), answer: clean(rec.fields[answer]) }], skipped: [] });
        }
      }
      return rows;
    };

    stream = fs.createReadStream(file, { encoding: 'utf8', start: anki.bytes, highWaterMark: STREAM_CHUNK_BYTES });
    for await (const chunk of stream) yield toRows(parser.push(chunk as string));
    yield toRows(parser.end());
  }

  return {
    unit: 'bytes',
    total,
    done: () => anki.bytes + (stream?.bytesRead ?? 0),
    batches,
  };
}
