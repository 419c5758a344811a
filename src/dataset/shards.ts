/**
 * THE shard format written by gptmed-tokenize and read by gptmed-train,
 * -evaluate (MANUAL.md, section `tokenize`): a directory with meta.json and
 * NumPy .npy files of shape [rows, seqLen], one packed row per line.
 *
 *   meta.json          ShardsMeta below
 *   train.npy          uint16 (vocab <= 65536) or int32 token ids, pad-filled
 *   train.mask.npy     uint8, same shape, with --mask-prompt: 1 = answer token
 *   val.npy, test.npy  the same for the other splits
 *   test.qa.txt        with a test split: its pairs as Q&A text, for gptmed-evaluate
 * With --shard-size N each split is cut into files of N rows: train-00000.npy, ...
 * inputFormat "text": the rows hold plain-text documents packed back to back
 * (the pair fields count documents); meta.json files written before the field
 * existed are Q&A shards, read as "qa".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dump, parse } from 'npyjs';
import { AtomicFileWriter } from '../common/atomic.js';
import { UserError } from '../common/errors.js';
import type { SpecialIds } from '../tokenizer/tokenizer.js';

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

export interface SplitInfo {
  /** .npy files of this split, relative to the shards directory, in order. */
  files: string[];
  /** With --mask-prompt: the mask file for each entry of `files`. */
  maskFiles?: string[];
  rows: number;
  /** Pairs (inputFormat "text": documents) in this split. */
  pairs: number;
  /** Non-pad tokens. */
  tokens: number;
  /** Pairs longer than a row, split into windows with the stride (text: documents continued into the next row). */
  splitPairs: number;
  /** The test split only: its pairs as Q&A text (test.qa.txt), for gptmed-evaluate. */
  qaFile?: string;
}

/** Token lengths of the pairs (bos and eos included). */
export interface LengthStats {
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ShardsMeta {
  format: 'gptmed-shards';
  version: 1;
  /** Tokens per row (= --max-length); the trainer uses x = row[0..seqLen-2], y = row[1..seqLen-1]. */
  seqLen: number;
  dtype: 'uint16' | 'int32';
  vocabSize: number;
  specialIds: SpecialIds;
  /** file: the .model as given on the command line, resolved absolute. */
  tokenizer: { file: string; sha256: string };
  /** file: the input, resolved absolute; sha256: of its bytes (a directory of documents: of its `name sha256` lines). */
  source: { file: string; sha256: string };
  /** What the rows hold: Q&A pairs, or plain-text documents packed back to back. */
  inputFormat: ShardsInputFormat;
  splits: { train: SplitInfo; val: SplitInfo; test?: SplitInfo };
  /** Seed of the pair split. */
  seed: number;
  trainSplit: number;
  testSplit: number;
  /** Step between the windows of a pair longer than a row. */
  stride: number;
  /** True when mask files mark the answer tokens (--mask-prompt). */
  promptMasked: boolean;
  /** Pairs (text: documents) read from the source, and how many tokens they have. */
  pairs: number;
  pairTokens: LengthStats;
  /** Rows' share of non-pad tokens, over all splits. */
  packingEfficiency: number;
}

export type ShardsInputFormat = 'qa' | 'text';

export const META_FILE = 'meta.json';

/**
 * The longest row (model context + 1) gptmed makes or trains on. One
 * attention score matrix of 16384^2 float32 is already 1 GiB a head, a
 * quarter of the wasm heap: longer rows could never be trained.
 */
export const MAX_ROW_LENGTH = 16384;

function invalid(file: string, what: string): UserError {
  return new UserError(`${file}: ${what}; re-run gptmed-tokenize to write the shards again`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkSplit(file: string, name: string, v: unknown): void {
  if (!isObject(v)) throw invalid(file, `splits.${name} is missing`);
  if (!Array.isArray(v.files) || v.files.some((f) => typeof f !== 'string')) throw invalid(file, `splits.${name}.files is not a list of files`);
  for (const k of ['rows', 'pairs', 'tokens', 'splitPairs']) {
    if (!Number.isInteger(v[k]) || (v[k] as number) < 0) throw invalid(file, `splits.${name}.${k} is not a whole number`);
  }
  if (v.maskFiles !== undefined && (!Array.isArray(v.maskFiles) || v.maskFiles.length !== v.files.length)) {
    throw invalid(file, `splits.${name}.maskFiles does not match splits.${name}.files`);
  }
}

/** Read and validate `<dir>/meta.json`. */
export function readShardsMeta(dir: string): ShardsMeta {
  const file = path.join(dir, META_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`${file}: not found; run gptmed-tokenize to write the shards (or give the directory it wrote)`);
  }
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    throw invalid(file, 'is not valid JSON');
  }
  if (!isObject(meta) || meta.format !== 'gptmed-shards') throw invalid(file, 'is not a gptmed shards description (format is not "gptmed-shards")');
  if (meta.version !== 1) throw invalid(file, `has version ${String(meta.version)}, this gptmed reads version 1`);
  const wholeNumber = (key: string, min: number): void => {
    const v = (meta as Record<string, unknown>)[key];
    if (v === undefined) throw invalid(file, `${key} is missing`);
    if (!Number.isInteger(v) || (v as number) < min) throw invalid(file, `${key} must be a whole number of at least ${min} (got ${JSON.stringify(v)})`);
  };
  wholeNumber('seqLen', 2);
  wholeNumber('vocabSize', 1);
  if (meta.dtype !== 'uint16' && meta.dtype !== 'int32') throw invalid(file, 'dtype is not uint16 or int32');
  const ids = meta.specialIds;
  if (!isObject(ids) || !['pad', 'unk', 'bos', 'eos'].every((k) => typeof ids[k] === 'number')) throw invalid(file, 'specialIds is missing');
  for (const k of ['tokenizer', 'source'] as const) {
    const v = meta[k];
    if (!isObject(v) || typeof v.file !== 'string' || typeof v.sha256 !== 'string') throw invalid(file, `${k} is missing its file or sha256`);
  }
  if (!isObject(meta.splits)) throw invalid(file, 'splits is missing');
  // Shards from before the field held Q&A pairs.
  if (meta.inputFormat === undefined) meta.inputFormat = 'qa';
  if (meta.inputFormat !== 'qa' && meta.inputFormat !== 'text') throw invalid(file, `inputFormat is not "qa" or "text" (got ${JSON.stringify(meta.inputFormat)})`);
  checkSplit(file, 'train', meta.splits.train);
  checkSplit(file, 'val', meta.splits.val);
  if (meta.splits.test !== undefined) checkSplit(file, 'test', meta.splits.test);
  return meta as unknown as ShardsMeta;
}

export interface TokenRows {
  meta: ShardsMeta;
  split: SplitName;
  rows: number;
  seqLen: number;
  /** rows * seqLen ids, row-major. */
  tokens: Uint16Array | Int32Array;
  /** Same shape; 1 = the token counts in the loss as a target (answer tokens, eos included). Null without --mask-prompt. */
  mask: Uint8Array | null;
}

/** Read a whole file into its own ArrayBuffer (typed arrays over it need an aligned, unshared buffer). */
function readArrayBuffer(file: string): ArrayBuffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = new ArrayBuffer(size);
    const view = new Uint8Array(buf);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, view, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

function readNpy(file: string, shardsDir: string): { data: ArrayBufferView; shape: number[]; dtype: string } {
  let buf: ArrayBuffer;
  try {
    buf = readArrayBuffer(file);
  } catch {
    throw new UserError(`${file}: not found; the shards in ${shardsDir} are incomplete, re-run gptmed-tokenize`);
  }
  try {
    const arr = parse(buf);
    if (arr.fortranOrder) throw new Error('fortran order');
    return arr;
  } catch {
    throw invalid(file, 'is not a readable .npy file');
  }
}

/** The shard path names a file: say what to give when it is missing or a directory. */
function checkShardPath(npyPath: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(npyPath);
  } catch {
    throw new UserError(`${npyPath}: not found; give a shard file gptmed-tokenize wrote, e.g. data/tokenized/train.npy`);
  }
  if (st.isDirectory()) {
    const inside = fs.existsSync(path.join(npyPath, META_FILE)) ? `, e.g. ${path.join(npyPath, 'train.npy')}` : '';
    throw new UserError(`${npyPath}: is a directory; give a shard file in it${inside}`);
  }
}

/** Load one shard file (e.g. data/tokenized/train.npy; meta.json beside it), validated against meta.json. */
export function loadTokenRows(npyPath: string): TokenRows {
  checkShardPath(npyPath);
  const dir = path.dirname(npyPath);
  const meta = readShardsMeta(dir);
  const base = path.basename(npyPath);
  let split: SplitName | undefined;
  let index = -1;
  for (const name of SPLIT_NAMES) {
    const i = meta.splits[name]?.files.indexOf(base) ?? -1;
    if (i >= 0) {
      split = name;
      index = i;
    }
  }
  if (!split) {
    throw new UserError(`${npyPath}: not listed in ${path.join(dir, META_FILE)}; give one of its shard files (${meta.splits.train.files[0] ?? 'train.npy'}, ...)`);
  }
  const arr = readNpy(npyPath, dir);
  const wantDtype = meta.dtype === 'uint16' ? 'u2' : 'i4';
  if (arr.dtype !== wantDtype) throw invalid(npyPath, `has dtype ${arr.dtype}, meta.json says ${meta.dtype}`);
  if (arr.shape.length !== 2 || arr.shape[1] !== meta.seqLen) {
    throw invalid(npyPath, `has shape [${arr.shape.join(', ')}], expected [rows, ${meta.seqLen}]`);
  }
  const rows = arr.shape[0];
  const tokens = arr.data as Uint16Array | Int32Array;
  if (tokens.length !== rows * meta.seqLen) {
    throw invalid(npyPath, `holds ${tokens.length} token ids where its header says [${rows}, ${meta.seqLen}] (${rows * meta.seqLen}): the file is cut short or damaged`);
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t < 0 || t >= meta.vocabSize) throw invalid(npyPath, `holds token id ${t} at row ${Math.floor(i / meta.seqLen)}, outside the vocabulary (size ${meta.vocabSize})`);
  }
  let mask: Uint8Array | null = null;
  const maskFile = meta.splits[split]?.maskFiles?.[index];
  if (maskFile) {
    const maskPath = path.join(dir, maskFile);
    const m = readNpy(maskPath, dir);
    if (m.dtype !== 'u1' || m.shape.length !== 2 || m.shape[0] !== rows || m.shape[1] !== meta.seqLen) {
      throw invalid(maskPath, `does not match ${base} (dtype ${m.dtype}, shape [${m.shape.join(', ')}])`);
    }
    mask = m.data as Uint8Array;
  }
  return { meta, split, rows, seqLen: meta.seqLen, tokens, mask };
}

export type RowArray = Uint16Array | Int32Array | Uint8Array;

/**
 * Writes rows of one .npy file with bounded memory: rows go to a scratch
 * data file, and `commitTo` writes the npyjs header for the final shape, then
 * the data, to the target (atomically). `abort` leaves nothing behind.
 */
export class NpyRowWriter {
  private fd: number | null;
  private rowCount = 0;

  constructor(
    private readonly scratchPath: string,
    /** An empty array of the element type: npyjs takes the dtype from it. */
    private readonly emptyOfType: () => RowArray,
    readonly rowLength: number,
  ) {
    this.fd = fs.openSync(scratchPath, 'w');
  }

  get rows(): number {
    return this.rowCount;
  }

  writeRow(row: RowArray): void {
    if (this.fd === null) throw new Error('NpyRowWriter: write after close');
    if (row.length !== this.rowLength) throw new Error(`NpyRowWriter: row of ${row.length}, expected ${this.rowLength}`);
    fs.writeSync(this.fd, new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
    this.rowCount++;
  }

  commitTo(target: string): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    const out = new AtomicFileWriter(target);
    try {
      out.write(new Uint8Array(dump(this.emptyOfType(), [this.rowCount, this.rowLength])));
      const src = fs.openSync(this.scratchPath, 'r');
      try {
        const chunk = Buffer.allocUnsafe(1 << 22);
        let n: number;
        while ((n = fs.readSync(src, chunk, 0, chunk.length, null)) > 0) out.write(chunk.subarray(0, n));
      } finally {
        fs.closeSync(src);
      }
      out.commit();
    } catch (err) {
      out.abort();
      throw err;
    } finally {
      fs.rmSync(this.scratchPath, { force: true });
    }
  }

  abort(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    fs.rmSync(this.scratchPath, { force: true });
  }
}
