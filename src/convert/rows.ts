/** What every input reader hands to the converter: rows, each giving candidate pairs. */
import type { QaPair } from './qa-format.js';

export interface Row {
  /** Candidate pairs, not yet normalized or filtered (a chat row may give several). */
  pairs: QaPair[];
  /** Why parts of the row gave no pair ('missing column', 'system turn', ...), one entry each. */
  skipped: string[];
  /** Where the row is in the input, counted as its source's `rowsAre` says (1-based); for messages only. */
  at?: number;
}

export interface RowSource {
  /** What `done()` and `total` count, for the progress line. */
  unit: 'bytes' | 'rows';
  total?: number;
  /** What a row's `at` counts: the line it starts on (tables, JSONL), the array element (JSON), the result row (SQLite). */
  rowsAre: 'line' | 'element' | 'row';
  done(): number;
  /** Rows in input order, in batches (one per chunk read) to keep per-row overhead low. */
  batches(): AsyncIterable<Row[]>;
}

/** A cell or field value as text; null when it is not text (an object, an array, a blob). */
export function textValue(v: unknown): string | null {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return null;
}

/** A row with one pair from two values, or the reason it has none. */
export function pairRow(question: unknown, answer: unknown): Row {
  const q = textValue(question);
  const a = textValue(answer);
  if (q === null || a === null) return { pairs: [], skipped: ['value is not text'] };
  return { pairs: [{ question: q, answer: a }], skipped: [] };
}

/**
 * Bytes read (and written) at a time by the streamed readers. Small pieces
 * keep the garbage that outlives each young-generation GC small: with 1 MB
 * pieces a 1 GB CSV peaked near 280 MB RSS, with 64 KB near 120 MB, at the
 * same speed (scripts/bench-convert).
 */
export const STREAM_CHUNK_BYTES = 64 * 1024;
