/**
 * JSON (an array of objects, or an object holding one such array; read whole)
 * and JSONL (one object a line; streamed).
 */
import * as fs from 'node:fs';
import { UserError } from '../common/errors.js';
import { LineSplitter, readTextFile, TextFileReader, type TextReadOptions } from '../common/input.js';
import { isJsonObject, looksLikeRecord, recordRow, type FieldNames } from './records.js';
import { STREAM_CHUNK_BYTES, type Row, type RowSource } from './rows.js';

/** JSON.parse's message on one line, with the line and column when it gives a position. */
function jsonErrorDetail(err: unknown, text: string): { line?: number; detail: string } {
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ');
  const short = message.length > 120 ? `${message.slice(0, 117)}...` : message;
  const pos = /at position (\d+)/.exec(message);
  if (!pos) return { detail: short };
  const offset = Number(pos[1]);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return { line, detail: `${short.replace(/ in JSON at position \d+.*$/, '')} at column ${column}` };
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const { line, detail } = jsonErrorDetail(err, text);
    throw new UserError(`${where}${line !== undefined ? `:${line}` : ''}: invalid JSON: ${detail}`);
  }
}

/** The records of a JSON document: the array itself, the one record, or the one array an object holds. */
function jsonRecords(doc: unknown, file: string): unknown[] {
  if (Array.isArray(doc)) return doc;
  if (!isJsonObject(doc)) {
    throw new UserError(`${file}: expected an array of objects or an object holding one, found ${doc === null ? 'null' : typeof doc}`);
  }
  if (looksLikeRecord(doc)) return [doc];
  const arrays = Object.keys(doc).filter((k) => Array.isArray(doc[k]));
  if (arrays.length === 1) return doc[arrays[0]] as unknown[];
  const keys = Object.keys(doc).map((k) => JSON.stringify(k)).join(', ');
  if (arrays.length === 0) {
    throw new UserError(`${file}: the top-level object holds no array of records (its keys: ${keys || 'none'}); expected an array of objects or an object holding one`);
  }
  throw new UserError(`${file}: the top-level object holds several arrays (${arrays.map((k) => JSON.stringify(k)).join(', ')}); keep the one with the records`);
}

export function readJson(file: string, names: FieldNames, text: TextReadOptions = {}): RowSource {
  let done = 0;
  let total: number | undefined;
  async function* batches(): AsyncGenerator<Row[]> {
    const records = jsonRecords(parseJson(readTextFile(file, text), file), file);
    total = records.length;
    const batchSize = 1000;
    for (let start = 0; start < records.length; start += batchSize) {
      const rows = records.slice(start, start + batchSize).map((r, i) => {
        const row = recordRow(r, `${file}: element ${start + i + 1}`, names);
        row.at = start + i + 1;
        return row;
      });
      done = start + rows.length;
      yield rows;
    }
  }
  return {
    unit: 'rows',
    rowsAre: 'element',
    get total() {
      return total;
    },
    done: () => done,
    batches,
  };
}

/** A line longer than this is not a JSONL record but a file of another kind. */
const MAX_LINE_CHARS = 64 * 1024 * 1024;

export function readJsonl(file: string, names: FieldNames, text: TextReadOptions = {}): RowSource {
  const reader = new TextFileReader(file, { chunkBytes: STREAM_CHUNK_BYTES, ...text });
  async function* batches(): AsyncGenerator<Row[]> {
    let lineNo = 0;
    const rowsOf = (lines: string[]): Row[] => {
      const rows: Row[] = [];
      for (const line of lines) {
        lineNo++;
        if (line.trim() === '') continue;
        const where = `${file}:${lineNo}`;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (err) {
          throw new UserError(`${where}: invalid JSON: ${jsonErrorDetail(err, line).detail}; each line must be one JSON object`);
        }
        const row = recordRow(value, where, names);
        row.at = lineNo;
        rows.push(row);
      }
      return rows;
    };
    const splitter = new LineSplitter();
    for await (const chunk of reader.chunks()) {
      const rows = rowsOf(splitter.push(chunk));
      if (splitter.pendingChars > MAX_LINE_CHARS) throw new UserError(`${file}:${lineNo + 1}: a line longer than ${MAX_LINE_CHARS >> 20} M characters; is this really JSONL (one object a line)?`);
      yield rows;
    }
    yield rowsOf(splitter.end());
  }
  return {
    unit: 'bytes',
    rowsAre: 'line',
    total: fs.statSync(file).size,
    done: () => reader.bytesRead,
    batches,
  };
}
