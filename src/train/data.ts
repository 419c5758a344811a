/**
 * Batches from token rows. One row is one example: x = row[0..L-2],
 * y = row[1..L-1]; a target counts in the loss iff it is not padding and,
 * when the shards carry a prompt mask, the mask marks it (answer tokens only).
 * The order of rows in each epoch is a seeded shuffle, so a run is
 * reproducible and a resumed run continues from the same position.
 */
import * as path from 'node:path';
import { UserError } from '../common/errors.js';
import { shuffledOrder } from '../common/shuffle.js';
import { loadTokenRows, META_FILE, type TokenRows } from '../dataset/shards.js';

export interface Batch {
  rows: number;
  /** Positions per row (seqLen - 1). */
  T: number;
  x: Int32Array;
  y: Int32Array;
  /** 1 where the target counts in the loss. */
  weights: Float32Array;
  /** Number of counted targets (sum of weights). */
  targets: number;
}

/** Rows in the order epoch `epoch` visits them: a Fisher-Yates shuffle seeded by (seed, epoch). */
export function epochOrder(rows: number, seed: number, epoch: number): Uint32Array {
  return shuffledOrder(rows, `gptmed-data:${seed}:${epoch}`);
}

/** Whether the token at flat position `p` (never a row's first) counts as a loss target. */
function isTarget(data: TokenRows, p: number, pad: number): boolean {
  return data.tokens[p] !== pad && (data.mask === null || data.mask[p] === 1);
}

/** Gather the rows `rowIds` of `data` into a batch. */
export function makeBatch(data: TokenRows, rowIds: ArrayLike<number>): Batch {
  const L = data.seqLen;
  const T = L - 1;
  const n = rowIds.length;
  const pad = data.meta.specialIds.pad;
  const x = new Int32Array(n * T);
  const y = new Int32Array(n * T);
  const weights = new Float32Array(n * T);
  let targets = 0;
  for (let r = 0; r < n; r++) {
    const src = rowIds[r] * L;
    const dst = r * T;
    for (let t = 0; t < T; t++) {
      const target = data.tokens[src + t + 1];
      x[dst + t] = data.tokens[src + t];
      y[dst + t] = target;
      if (isTarget(data, src + t + 1, pad)) {
        weights[dst + t] = 1;
        targets++;
      }
    }
  }
  return { rows: n, T, x, y, weights, targets };
}

/** The micro-batches of one epoch: `batchSize` rows each, the last one possibly smaller. */
export function microBatchCount(rows: number, batchSize: number): number {
  return Math.ceil(rows / batchSize);
}

/** Optimizer steps per epoch: `gradAccum` micro-batches each, the last one possibly fewer. */
export function stepsPerEpoch(rows: number, batchSize: number, gradAccum: number): number {
  return Math.ceil(microBatchCount(rows, batchSize) / gradAccum);
}

/**
 * Cross-entropy (nats per counted target) of `val`'s targets under the
 * add-one-smoothed unigram distribution of `train`'s targets: what a model
 * that ignores context would score. A trained model must beat it.
 */
export function unigramBaseline(train: TokenRows, val: TokenRows): number {
  const V = train.meta.vocabSize;
  const counts = new Float64Array(V);
  let total = 0;
  forEachTarget(train, (tok) => {
    counts[tok]++;
    total++;
  });
  let nll = 0;
  let n = 0;
  forEachTarget(val, (tok) => {
    nll -= Math.log((counts[tok] + 1) / (total + V));
    n++;
  });
  return n > 0 ? nll / n : Number.NaN;
}

function forEachTarget(data: TokenRows, f: (token: number) => void): void {
  const L = data.seqLen;
  const pad = data.meta.specialIds.pad;
  for (let r = 0; r < data.rows; r++) {
    for (let p = r * L + 1; p < (r + 1) * L; p++) {
      if (isTarget(data, p, pad)) f(data.tokens[p]);
    }
  }
}

/**
 * All rows of the split that `npyPath` belongs to. With `gptmed-tokenize
 * --shard-size` a split spans several files; naming any one of them loads all.
 */
export function loadSplit(npyPath: string): { data: TokenRows; files: string[] } {
  const first = loadTokenRows(npyPath);
  const files = first.meta.splits[first.split]?.files ?? [path.basename(npyPath)];
  if (files.length <= 1) return { data: checkRowCount(first, npyPath), files: [npyPath] };
  const dir = path.dirname(npyPath);
  const paths = files.map((f) => path.join(dir, f));
  const parts = paths.map((p) => (path.basename(p) === path.basename(npyPath) ? first : loadTokenRows(p)));
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const tokens = first.tokens instanceof Uint16Array ? new Uint16Array(rows * first.seqLen) : new Int32Array(rows * first.seqLen);
  const mask = first.mask ? new Uint8Array(rows * first.seqLen) : null;
  let offset = 0;
  for (const p of parts) {
    tokens.set(p.tokens, offset);
    if (mask && p.mask) mask.set(p.mask, offset);
    offset += p.tokens.length;
  }
  return { data: checkRowCount({ ...first, rows, tokens, mask }, npyPath), files: paths };
}

/** The split's rows must be as many as meta.json says: a shard file replaced or cut short is caught here. */
function checkRowCount(data: TokenRows, npyPath: string): TokenRows {
  const said = data.meta.splits[data.split]?.rows;
  if (data.rows !== said) {
    const meta = path.join(path.dirname(npyPath), META_FILE);
    throw new UserError(`${npyPath}: the ${data.split} split has ${data.rows} rows, ${meta} says ${said}; the shards were changed after gptmed-tokenize wrote them, run it again`);
  }
  return data;
}
