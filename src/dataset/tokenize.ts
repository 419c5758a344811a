/**
 * gptmed-tokenize: Q&A text (or plain-text documents, documents.ts) + tokenizer -> packed .npy shards (shards.ts).
 *
 * Pass 1 streams the pairs once, encodes them on worker threads
 * (sentencepiece-js, each distinct word once: PairEncoder) and appends their ids
 * to a scratch file, so the text is read and encoded once. The split needs
 * the pair count: it is drawn per pair from the seed after pass 1 and before
 * any packing, so no pair lands in two splits. Pass 2 reads the scratch ids
 * back in order and packs each split's pairs into rows of --max-length without
 * cutting a pair that fits; longer pairs are cut into windows --stride apart.
 * Plain-text documents go the same way, each as [bos, ...text, eos], split by
 * document and packed back to back (a document continues into the next row).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { tempPathFor, writeDirAtomic, writeFileAtomic } from '../common/atomic.js';
import { outputError, UsageError, UserError } from '../common/errors.js';
import { sha256File } from '../common/hash.js';
import { checkTextFile } from '../common/input.js';
import { checkOutput } from '../common/output.js';
import { Progress } from '../common/progress.js';
import { shuffledOrder } from '../common/shuffle.js';
import { Int32List } from '../common/typed-arrays.js';
import { formatQaPair, readQaFile, type QaPair, type TextInputFormat } from '../convert/qa-format.js';
import { inspectModel, type ModelInfo } from '../tokenizer/tokenizer.js';
import { readDocuments, resolveInputFormat, textInputFiles, textInputHash } from './documents.js';
import type { EncodeReply, EncodeRequest } from './encode-worker.js';
import { MAX_ROW_LENGTH, META_FILE, NpyRowWriter, type LengthStats, type ShardsMeta, type SplitInfo, type SplitName } from './shards.js';

export interface TokenizeOptions {
  input: string;
  tokenizer: string;
  outputDir: string;
  maxLength?: number;
  trainSplit?: number;
  testSplit?: number;
  /** Step between windows of a pair longer than a row; default maxLength (no overlap). */
  stride?: number;
  seed?: number;
  /** Rows per .npy file; default: one file per split. */
  shardSize?: number;
  maskPrompt?: boolean;
  /** qa (the default): Q&A text; text: plain-text documents; auto: Q&A when the file starts with "Q:". */
  inputFormat?: TextInputFormat;
  force?: boolean;
  quiet?: boolean;
  /** Encoding threads; default: the CPU count, at most 2... 8. */
  workers?: number;
  warn?: (message: string) => void;
}

/** Pairs (or documents) per worker message: enough to make the message cost vanish, few enough to keep both workers busy to the end. */
const BATCH_PAIRS = 256;
/** Characters of documents per worker message: long documents make smaller batches, so the batches in flight stay small. */
const BATCH_CHARS = 1 << 18;
/** Ids read back per pass-2 read. */
const READ_IDS = 1 << 20;
const TEST_QA_FILE = 'test.qa.txt';

function checkOptions(o: Required<Pick<TokenizeOptions, 'maxLength' | 'trainSplit' | 'testSplit' | 'stride' | 'seed'>> & { shardSize?: number }): void {
  if (!Number.isInteger(o.maxLength) || o.maxLength < 2 || o.maxLength > MAX_ROW_LENGTH) {
    throw new UsageError(`--max-length must be an integer from 2 to ${MAX_ROW_LENGTH}, the longest context gptmed can train (got ${o.maxLength})`);
  }
  if (!Number.isInteger(o.stride) || o.stride < 1 || o.stride > o.maxLength) throw new UsageError(`--stride must be an integer from 1 to --max-length (${o.maxLength}) (got ${o.stride})`);
  if (!(o.trainSplit > 0 && o.trainSplit < 1)) throw new UsageError(`--train-split must be between 0 and 1 (got ${o.trainSplit})`);
  if (!(o.testSplit >= 0 && o.testSplit < 1)) throw new UsageError(`--test-split must be from 0 to below 1 (got ${o.testSplit})`);
  if (!Number.isInteger(o.seed)) throw new UsageError(`--seed must be an integer (got ${o.seed})`);
  if (o.shardSize !== undefined && (!Number.isInteger(o.shardSize) || o.shardSize < 1)) throw new UsageError(`--shard-size must be a positive number of rows (got ${o.shardSize})`);
}

/**
 * Which split each pair goes to (0 train, 1 val, 2 test), from a seeded
 * shuffle of the pair indexes: the test share is held out first, and
 * --train-split divides the rest between train and val.
 */
export function assignSplits(pairs: number, trainSplit: number, testSplit: number, seed: number): Uint8Array {
  const nTest = Math.round(pairs * testSplit);
  const nTrain = Math.round((pairs - nTest) * trainSplit);
  const nVal = pairs - nTrain - nTest;
  const order = shuffledOrder(pairs, String(seed));
  const split = new Uint8Array(pairs);
  for (let k = 0; k < pairs; k++) split[order[k]] = k < nTrain ? 0 : k < nTrain + nVal ? 1 : 2;
  return split;
}

/**
 * Packs one split's pairs into rows and writes them to its .npy file(s). `continuous` (plain text): the
 * documents back to back, a document continuing into the next row; only the last row is padded.
 */
class SplitPacker {
  readonly info: SplitInfo = { files: [], rows: 0, pairs: 0, tokens: 0, splitPairs: 0 };
  private readonly row: Uint16Array | Int32Array;
  private readonly mask: Uint8Array | null;
  private fill = 0;
  private writer: NpyRowWriter | null = null;
  private maskWriter: NpyRowWriter | null = null;
  private readonly finished: Array<[NpyRowWriter, string]> = [];

  constructor(
    private readonly name: SplitName,
    private readonly scratch: string,
    private readonly o: { seqLen: number; stride: number; pad: number; int32: boolean; shardSize?: number; mask: boolean; continuous: boolean },
  ) {
    this.row = o.int32 ? new Int32Array(o.seqLen) : new Uint16Array(o.seqLen);
    this.row.fill(o.pad);
    this.mask = o.mask ? new Uint8Array(o.seqLen) : null;
    if (o.mask) this.info.maskFiles = [];
  }

  private fileName(kind: '' | '.mask'): string {
    const index = this.o.shardSize === undefined ? '' : `-${String(this.info.files.length - (kind === '' ? 0 : 1)).padStart(5, '0')}`;
    return `${this.name}${index}${kind}.npy`;
  }

  private emit(): void {
    if (!this.writer || (this.o.shardSize !== undefined && this.writer.rows >= this.o.shardSize)) {
      this.closeShard();
      const file = this.fileName('');
      this.info.files.push(file);
      this.writer = new NpyRowWriter(path.join(this.scratch, file), () => (this.o.int32 ? new Int32Array(0) : new Uint16Array(0)), this.o.seqLen);
      if (this.mask) {
        const maskFile = this.fileName('.mask');
        this.info.maskFiles!.push(maskFile);
        this.maskWriter = new NpyRowWriter(path.join(this.scratch, maskFile), () => new Uint8Array(0), this.o.seqLen);
      }
    }
    this.writer.writeRow(this.row);
    this.maskWriter?.writeRow(this.mask!);
    this.info.rows++;
    this.info.tokens += this.fill;
    this.row.fill(this.o.pad);
    this.mask?.fill(0);
    this.fill = 0;
  }

  private closeShard(): void {
    if (this.writer) this.finished.push([this.writer, this.info.files[this.info.files.length - 1]]);
    if (this.maskWriter) this.finished.push([this.maskWriter, this.info.maskFiles![this.info.maskFiles!.length - 1]]);
    this.writer = null;
    this.maskWriter = null;
  }

  private put(ids: Int32Array, answerStart: number, from: number, to: number): void {
    this.row.set(ids.subarray(from, to), this.fill);
    if (this.mask) for (let k = from; k < to; k++) this.mask[this.fill + k - from] = k >= answerStart ? 1 : 0;
    this.fill += to - from;
  }

  add(ids: Int32Array, answerStart: number): void {
    const { seqLen, stride } = this.o;
    this.info.pairs++;
    if (this.o.continuous) return this.addContinuing(ids);
    if (ids.length <= seqLen) {
      if (this.fill + ids.length > seqLen) this.emit();
      this.put(ids, answerStart, 0, ids.length);
      return;
    }
    this.info.splitPairs++;
    if (this.fill > 0) this.emit();
    for (let start = 0; ; start += stride) {
      const end = Math.min(start + seqLen, ids.length);
      this.put(ids, answerStart, start, end);
      this.emit();
      if (end === ids.length) break;
    }
  }

  /** A document from where the row stands, on into the next rows; one that does not end in its first row counts in splitPairs. */
  private addContinuing(ids: Int32Array): void {
    const { seqLen } = this.o;
    for (let from = 0; from < ids.length; ) {
      const to = Math.min(ids.length, from + seqLen - this.fill);
      this.put(ids, ids.length, from, to);
      if (this.fill === seqLen) {
        this.emit();
        if (from === 0 && to < ids.length) this.info.splitPairs++;
      }
      from = to;
    }
  }

  /** Flush the last row; returns the writers with their file names. */
  finish(): Array<[NpyRowWriter, string]> {
    if (this.fill > 0) this.emit();
    this.closeShard();
    return this.finished;
  }

  abort(): void {
    this.closeShard();
    for (const [w] of this.finished) w.abort();
  }
}

function lengthStats(lengths: Int32Array): LengthStats {
  const sorted = Uint32Array.from(lengths).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  let sum = 0;
  for (const n of sorted) sum += n;
  return { min: sorted[0], p50: at(0.5), p90: at(0.9), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1], mean: Math.round((sum / sorted.length) * 100) / 100 };
}

/** The built worker module beside this one: tokenizeDataset runs from dist/ (the tests run it through the CLI). */
function startWorker(modelPath: string): Worker {
  return new Worker(new URL('./encode-worker.js', import.meta.url), { workerData: { modelPath } });
}

/** A pool of encode workers; results come back in submission order. */
class EncoderPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, (r: EncodeReply) => void>();
  private failure: Error | null = null;
  private next = 0;

  static async start(modelPath: string, count: number): Promise<EncoderPool> {
    const pool = new EncoderPool();
    await Promise.all(
      Array.from({ length: count }, () => {
        const worker = startWorker(modelPath);
        pool.workers.push(worker);
        return new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          // A model SentencePiece cannot load fails here, with loadTokenizer's message.
          worker.once('error', (err) => reject(new UserError(err.message)));
        }).then(() => {
          worker.on('message', (r: EncodeReply) => {
            const done = pool.pending.get(r.batch);
            pool.pending.delete(r.batch);
            done?.(r);
          });
          worker.on('error', (err) => {
            pool.failure = err;
          });
        });
      }),
    );
    return pool;
  }

  encode(req: EncodeRequest): Promise<EncodeReply> {
    if (this.failure) return Promise.reject(this.failure);
    const w = this.workers[this.next++ % this.workers.length];
    return new Promise((resolve) => {
      this.pending.set(req.batch, resolve);
      w.postMessage(req);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function requireSpecials(tok: ModelInfo, modelPath: string): void {
  const { pad, bos, eos } = tok.specialIds;
  if (pad < 0 || bos < 0 || eos < 0) {
    throw new UserError(
      `${modelPath}: the tokenizer has no ${pad < 0 ? '<pad>' : '<s>/</s>'} piece; train one on Q&A text with gptmed-train-tokenizer (plain text may be given beside it as another --input)`,
    );
  }
}

/** The input as read: its format and the files it reads (a directory of documents: its .txt files). */
interface InputSource {
  format: 'qa' | 'text';
  files: string[];
}

/** Resolve --input-format and check the input and the flags that depend on it; nothing is read yet. */
function resolveSource(opts: TokenizeOptions): InputSource {
  const format = resolveInputFormat(opts.input, opts.inputFormat ?? 'qa');
  if (format === 'qa') {
    if (fs.existsSync(opts.input) && fs.statSync(opts.input).isDirectory()) {
      throw new UserError(`${opts.input}: is a directory; for a directory of .txt documents give --input-format text, for Q&A text give the file`);
    }
    checkTextFile(opts.input);
    return { format, files: [opts.input] };
  }
  if (opts.maskPrompt) throw new UsageError(`--mask-prompt marks the answers of Q&A pairs, and plain text (${opts.input}) has none; leave --mask-prompt out, or give Q&A text`);
  if (opts.stride !== undefined) throw new UsageError('--stride cuts Q&A pairs longer than a row into windows; plain-text documents are packed back to back, so leave --stride out');
  return { format, files: textInputFiles(opts.input) };
}

export async function tokenizeDataset(opts: TokenizeOptions): Promise<ShardsMeta> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const maxLength = opts.maxLength ?? 512;
  const o = {
    maxLength,
    trainSplit: opts.trainSplit ?? 0.9,
    testSplit: opts.testSplit ?? 0,
    stride: opts.stride ?? maxLength,
    seed: opts.seed ?? 42,
    shardSize: opts.shardSize,
  };
  checkOptions(o);
  const source = resolveSource(opts);
  checkOutput(opts.outputDir, opts.force ?? false, '--output-dir', 'directory');
  // The workers load the model into SentencePiece; here its facts are enough.
  const tok = inspectModel(opts.tokenizer);
  requireSpecials(tok, opts.tokenizer);

  // The workers take a third of a second to start: the input is read meanwhile (encodeToFile).
  const workerCount = opts.workers ?? Math.max(1, Math.min(os.availableParallelism(), 8));
  const starting = EncoderPool.start(path.resolve(opts.tokenizer), workerCount);
  starting.catch(() => undefined);
  try {
    return await tokenizeWith(starting, workerCount, tok, o, source, opts, warn);
  } finally {
    await starting.then((p) => p.close(), () => undefined);
  }
}

interface EncodedFile {
  /** Pairs, or documents. */
  pairs: number;
  malformed: number;
  /** Token count of each pair, bos and eos included. */
  lengths: Int32Array;
  answerStarts: Int32Array;
}

/** What the reading of the input has counted so far. */
interface ReadCounts {
  malformed: number;
  bytesRead: number;
}

type EncodeBatch = { pairs: QaPair[] } | { documents: string[] };

/** The input's pairs or documents in batches for the workers, in file order. */
async function* inputBatches(input: string, source: InputSource, counts: ReadCounts): AsyncGenerator<EncodeBatch> {
  const onRead = (bytes: number): void => void (counts.bytesRead = bytes);
  if (source.format === 'qa') {
    let batch: QaPair[] = [];
    for await (const pair of readQaFile(input, { onMalformed: () => void counts.malformed++, onRead })) {
      batch.push(pair);
      if (batch.length === BATCH_PAIRS) {
        yield { pairs: batch };
        batch = [];
      }
    }
    if (batch.length > 0) yield { pairs: batch };
    return;
  }
  let batch: string[] = [];
  let chars = 0;
  for await (const doc of readDocuments(input, source.files, onRead)) {
    batch.push(doc);
    chars += doc.length;
    if (batch.length === BATCH_PAIRS || chars >= BATCH_CHARS) {
      yield { documents: batch };
      batch = [];
      chars = 0;
    }
  }
  if (batch.length > 0) yield { documents: batch };
}

/** Pass 1: encode every batch on the pool, appending the ids (int32) to `idsFile` in file order. */
async function encodeToFile(starting: Promise<EncoderPool>, workerCount: number, batches: AsyncIterable<EncodeBatch>, counts: ReadCounts, idsFile: string, progress: Progress): Promise<EncodedFile> {
  // Per-pair counts, as the pairs come (the count is known only at the end).
  const lengths = new Int32List();
  const answerStarts = new Int32List();
  const fd = fs.openSync(idsFile, 'w');
  try {
    // Batches in flight, resolved in order; bounded so memory stays flat on any input size.
    const inFlight: Array<Promise<EncodeReply>> = [];
    const drainOne = async (): Promise<void> => {
      const r = await inFlight.shift()!;
      fs.writeSync(fd, new Uint8Array(r.ids.buffer, r.ids.byteOffset, r.ids.byteLength));
      lengths.push(r.lengths);
      answerStarts.push(r.answerStarts);
      progress.update(counts.bytesRead);
    };
    let batchNo = 0;
    for await (const batch of batches) {
      const req: EncodeRequest = { batch: batchNo++, ...batch };
      // Callbacks on one promise run in the order they were added: batches reach the workers in order.
      const reply = starting.then((pool) => pool.encode(req));
      // drainOne rethrows the first failure; the batches behind it must not count as unhandled rejections too.
      reply.catch(() => undefined);
      inFlight.push(reply);
      if (inFlight.length >= workerCount * 4) await drainOne();
    }
    while (inFlight.length > 0) await drainOne();
  } finally {
    fs.closeSync(fd);
  }
  return { pairs: lengths.length, malformed: counts.malformed, lengths: lengths.view(), answerStarts: answerStarts.view() };
}

/** Pass 2: hand each pair's ids from `idsFile`, in order, to `take`. */
function readPairIds(idsFile: string, lengths: Int32Array, take: (pair: number, ids: Int32Array) => void): void {
  const fd = fs.openSync(idsFile, 'r');
  try {
    let buf = new Int32Array(READ_IDS);
    let have = 0;
    let at = 0;
    for (let pair = 0; pair < lengths.length; pair++) {
      const n = lengths[pair];
      if (at + n > have) {
        // Keep the unread tail, then fill the buffer (grown when one pair is longer than it).
        if (n > buf.length) {
          const grown = new Int32Array(n);
          grown.set(buf.subarray(at, have));
          buf = grown;
        } else {
          buf.copyWithin(0, at, have);
        }
        have -= at;
        at = 0;
        while (have < n) {
          const got = fs.readSync(fd, new Uint8Array(buf.buffer, have * 4, (buf.length - have) * 4));
          if (got === 0 || got % 4 !== 0) throw new Error(`${idsFile}: scratch ids ended early`);
          have += got / 4;
        }
      }
      take(pair, buf.subarray(at, at + n));
      at += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The held-out test pairs, in file order, as Q&A text for gptmed-evaluate. */
async function writeTestPairs(input: string, splitOf: Uint8Array, file: string): Promise<void> {
  const fd = fs.openSync(file, 'w');
  try {
    let index = 0;
    for await (const pair of readQaFile(input)) {
      if (splitOf[index++] === 2) fs.writeSync(fd, formatQaPair(pair));
    }
    if (index !== splitOf.length) throw new UserError(`${input}: the file changed while it was being read; run again`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Pass 1 over the input, with its progress and its one-line refusals: no pairs (or documents) at all. */
async function encodeInput(starting: Promise<EncoderPool>, workerCount: number, source: InputSource, opts: TokenizeOptions, idsFile: string, warn: (message: string) => void): Promise<EncodedFile> {
  const total = source.files.reduce((n, f) => n + fs.statSync(f).size, 0);
  const progress = new Progress({ label: 'tokenize', total, unit: 'MB', scale: 1e6, quiet: opts.quiet });
  const counts: ReadCounts = { malformed: 0, bytesRead: 0 };
  const encoded = await encodeToFile(starting, workerCount, inputBatches(opts.input, source, counts), counts, idsFile, progress);
  progress.finish();
  if (encoded.pairs === 0 && source.format === 'text') throw new UserError(`${opts.input}: no documents found (the text is empty or only blank lines); give plain text`);
  if (encoded.pairs === 0) {
    throw new UserError(`${opts.input}: no Q&A pairs found; give Q&A text (Q: ... / A: ... blocks), see gptmed-convert, or for plain text --input-format text`);
  }
  if (encoded.malformed > 0) warn(`${opts.input}: ${encoded.malformed} malformed Q&A block(s) skipped (gptmed-convert --strict shows where)`);
  return encoded;
}

/** The split of each pair (document), refused in one line when a split would be empty. */
function splitItems(count: number, o: { trainSplit: number; testSplit: number; seed: number }, input: string, format: 'qa' | 'text'): Uint8Array {
  const splitOf = assignSplits(count, o.trainSplit, o.testSplit, o.seed);
  const counts = [0, 0, 0];
  for (const s of splitOf) counts[s]++;
  if (counts[0] === 0 || counts[1] === 0 || (o.testSplit > 0 && counts[2] === 0)) {
    const noun = format === 'qa' ? 'pair' : 'document';
    throw new UserError(`${input}: ${count} ${noun}(s) are too few to split (train ${counts[0]}, val ${counts[1]}, test ${counts[2]}); add ${noun}s or change --train-split/--test-split`);
  }
  return splitOf;
}

async function tokenizeWith(
  starting: Promise<EncoderPool>,
  workerCount: number,
  tok: ModelInfo,
  o: { maxLength: number; trainSplit: number; testSplit: number; stride: number; seed: number; shardSize?: number },
  source: InputSource,
  opts: TokenizeOptions,
  warn: (message: string) => void,
): Promise<ShardsMeta> {
  const scratch = tempPathFor(path.resolve(opts.outputDir));
  fs.mkdirSync(scratch, { recursive: true });
  const idsFile = path.join(scratch, 'pairs.ids');
  const names: SplitName[] = o.testSplit > 0 ? ['train', 'val', 'test'] : ['train', 'val'];
  const packing = { seqLen: o.maxLength, stride: o.stride, pad: tok.specialIds.pad, int32: tok.vocabSize > 65536, shardSize: o.shardSize, mask: opts.maskPrompt ?? false };
  const packers = names.map((name) => new SplitPacker(name, scratch, { ...packing, continuous: source.format === 'text' }));
  try {
    const { pairs, lengths, answerStarts } = await encodeInput(starting, workerCount, source, opts, idsFile, warn);
    const splitOf = splitItems(pairs, o, opts.input, source.format);
    readPairIds(idsFile, lengths, (i, ids) => packers[splitOf[i]].add(ids, answerStarts[i]));
    fs.rmSync(idsFile);
    const qaTest = names.includes('test') && source.format === 'qa';
    if (qaTest) await writeTestPairs(opts.input, splitOf, path.join(scratch, TEST_QA_FILE));

    const splits = {} as ShardsMeta['splits'];
    const writers: Array<[NpyRowWriter, string]> = [];
    packers.forEach((p, k) => {
      writers.push(...p.finish());
      splits[names[k]] = p.info;
    });
    if (qaTest) splits.test!.qaFile = TEST_QA_FILE;
    const meta = shardsMeta(tok, o, source, opts, splits, { pairs, lengths });
    writeDirAtomic(opts.outputDir, (dir) => {
      for (const [w, file] of writers) w.commitTo(path.join(dir, file));
      if (qaTest) fs.renameSync(path.join(scratch, TEST_QA_FILE), path.join(dir, TEST_QA_FILE));
      writeFileAtomic(path.join(dir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    });
    return meta;
  } catch (err) {
    for (const p of packers) p.abort();
    // The scratch directory sits beside the output: a full disk there is the output's.
    throw outputError(err, opts.outputDir);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** meta.json's description of the shards written. */
function shardsMeta(
  tok: ModelInfo,
  o: { maxLength: number; trainSplit: number; testSplit: number; stride: number; seed: number },
  source: InputSource,
  opts: TokenizeOptions,
  splits: ShardsMeta['splits'],
  items: { pairs: number; lengths: Int32Array },
): ShardsMeta {
  const all = Object.values(splits);
  const totalRows = all.reduce((n, s) => n + s.rows, 0);
  const totalTokens = all.reduce((n, s) => n + s.tokens, 0);
  return {
    format: 'gptmed-shards',
    version: 1,
    seqLen: o.maxLength,
    dtype: tok.vocabSize > 65536 ? 'int32' : 'uint16',
    vocabSize: tok.vocabSize,
    specialIds: tok.specialIds,
    tokenizer: { file: path.resolve(opts.tokenizer), sha256: tok.sha256 },
    source: { file: path.resolve(opts.input), sha256: source.format === 'qa' ? sha256File(opts.input) : textInputHash(opts.input, source.files) },
    inputFormat: source.format,
    splits,
    seed: o.seed,
    trainSplit: o.trainSplit,
    testSplit: o.testSplit,
    stride: o.stride,
    promptMasked: opts.maskPrompt ?? false,
    pairs: items.pairs,
    pairTokens: lengthStats(items.lengths),
    packingEfficiency: Math.round((totalTokens / (totalRows * o.maxLength)) * 10000) / 10000,
  };
}
