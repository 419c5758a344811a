/**
 * GPT.forward for KV-cached decoding, on plain Float32Arrays and the native addon's kernels
 * (src/backend/native.ts), computing what gpt.ts's header says line for line:
 *   x = wte[idx] * sqrt(dModel) + wpe[pos]
 *   per block: x += attn(ln1(x)); x += mlp(ln2(x))
 *   logits = lnF(x) @ wte^T                      (only each sequence's last position: all decoding needs)
 *
 * Why a second forward: at batch 1 a decoding step is ~2 MFLOP (tiny) to ~10 MFLOP (small), so on the
 * wasm/cpu backends its time went to tfjs's per-op dispatch and tensor bookkeeping (~15 ops per block,
 * each allocating), not to arithmetic. Here the weights are read once per model, the keys and values
 * live in preallocated arrays, and a step is a dozen native calls per block (matrix products through
 * the system BLAS's sgemv or sgemm, softmax, GELU) plus short JavaScript loops over dModel-sized rows
 * (LayerNorm, residuals, copies in and out of the cache). Measured in one run (scripts/bench-generate,
 * tiny, 2 busy cores): GPT.forward with its KVCache 422-540 tokens/s, this 1,820-6,259.
 *
 * Several sequences ("slots") share one decoder, one per model: a forward takes any mix of them, each
 * with its own new tokens and its own cached length, so the linear layers (the bulk of the work) run
 * once over every new token of every sequence, while attention runs per sequence over its own cache.
 *
 * Only for models without unmerged LoRA adapters (loaded checkpoints have them merged); the weights
 * are those of the model's variables when first read (a model whose variables are later replaced is
 * read again; one trained in place must not be decoded through here).
 */
import type { NativeKernels } from '../backend/native.js';
import { UserError } from '../common/errors.js';
import type { ModelConfig } from './config.js';
import type { GPT } from './gpt.js';
import { layerNormEps, maskedScore } from './fused.js';

/**
 * Up to this many rows a product runs as one matrix-vector product per row (the addon's gemv), above
 * it as one sgemm: sgemm packs the whole weight matrix first, so for the LM head one row took ~270 us
 * as sgemm and ~70 us as sgemv, and the two broke even at about 4 rows.
 */
const gemvRowsMax = 3;
/**
 * A prompt's products of less work than this (rows x in x out multiply-adds) run in pieces of chunkRows
 * rows on the calling thread: handing half of a product this small to the addon's pool costs more than it
 * saves, while larger ones gain from it. Measured on a quiet machine, 32-token prefill vs PyTorch's time,
 * median of 3: everything chunked, tiny 0.67x small 1.35x; everything pooled, tiny 0.92x small 0.93x. Tiny's
 * products are at most 32 x 128 x 512 (2.1M), small's qkv, fc and mlp.proj 6.3-8.4M.
 */
const pooledMacsMin = 4_000_000;
const chunkRows = 16;
/** Closed slots whose cache arrays are kept for reuse (each maxSeqLen * dModel * nLayers * 8 bytes: 1 MB tiny, 4 MB small). */
const spareSlotsMax = 8;

type Pair = [Float32Array, Float32Array];

interface BlockWeights {
  ln1: Pair;
  qkv: Pair;
  attnProj: Pair;
  ln2: Pair;
  fc: Pair;
  mlpProj: Pair;
}

/** Each block field's parameters, by their names in parameterSpecs (gpt.ts): `h.<layer>.<name>.<first|second>`. */
const blockParameters: Record<keyof BlockWeights, [string, string, string]> = {
  ln1: ['ln1', 'gamma', 'beta'],
  qkv: ['attn.qkv', 'weight', 'bias'],
  attnProj: ['attn.proj', 'weight', 'bias'],
  ln2: ['ln2', 'gamma', 'beta'],
  fc: ['mlp.fc', 'weight', 'bias'],
  mlpProj: ['mlp.proj', 'weight', 'bias'],
};

interface DecoderWeights {
  /** The variables' data ids when read: a model whose variables were reassigned is read again. */
  source: readonly object[];
  wte: Float32Array;
  wpe: Float32Array;
  blocks: BlockWeights[];
  lnF: Pair;
}

const weightsByModel = new WeakMap<GPT, DecoderWeights>();
const decoderByModel = new WeakMap<GPT, NativeDecoder>();

/** The model's weights as arrays, read once per model (and again after its variables were reassigned). */
function decoderWeights(model: GPT): DecoderWeights {
  const params = model.parameters();
  const source = params.map((p) => p.variable.dataId);
  const cached = weightsByModel.get(model);
  if (cached && cached.source.every((id, i) => id === source[i])) return cached;
  const byName = new Map(params.map((p) => [p.name, p.variable.dataSync() as Float32Array]));
  const pair = (name: string, a: string, b: string): Pair => [byName.get(`${name}.${a}`)!, byName.get(`${name}.${b}`)!];
  const weights: DecoderWeights = {
    source,
    wte: byName.get('wte')!,
    wpe: byName.get('wpe')!,
    blocks: Array.from({ length: model.config.nLayers }, (_, i) => {
      const entries = Object.entries(blockParameters).map(([field, [name, a, b]]) => [field, pair(`h.${i}.${name}`, a, b)]);
      return Object.fromEntries(entries) as BlockWeights;
    }),
    lnF: pair('lnF', 'gamma', 'beta'),
  };
  weightsByModel.set(model, weights);
  return weights;
}

/** New tokens for one sequence: appended after what its slot already holds. */
export interface SlotInput {
  slot: number;
  ids: readonly number[];
}

/** Where one sequence's new tokens sit in a forward: rows [row, row + count) of the token matrix. */
interface Segment {
  slot: number;
  row: number;
  count: number;
  /** Positions cached before this forward. */
  past: number;
}

/** One sequence's cache: per layer, keys and values [nHeads, maxSeqLen, headDim], so a head's cache is one strided matrix. */
interface SlotCache {
  keys: Float32Array[];
  values: Float32Array[];
  /** Positions held (the next token's position). */
  length: number;
}

/**
 * The model's decoder, one per model and shared by every decode running on it (so that concurrent decodes
 * can share forward passes); made again when the model's variables were reassigned.
 */
export function nativeDecoderFor(model: GPT, kernels: NativeKernels): NativeDecoder {
  const current = decoderByModel.get(model);
  if (current && current.reads(decoderWeights(model))) return current;
  const decoder = new NativeDecoder(model, kernels);
  decoderByModel.set(model, decoder);
  return decoder;
}

export class NativeDecoder {
  readonly config: ModelConfig;
  private readonly weights: DecoderWeights;
  private readonly headDim: number;
  private readonly slots = new Map<number, SlotCache>();
  private nextSlot = 0;
  /**
   * Cache arrays of closed slots, reused by the next ones: those of at most spareSlotsMax slots. Fresh
   * megabytes per answer cost more than a short prompt's prefill (allocation, first-touch page faults,
   * the garbage collections V8 starts as external memory grows). Stale contents are harmless: a
   * position is written before it is read.
   */
  private readonly spare: Float32Array[] = [];
  /** Forward passes run so far (tests and benchmarks of batching read it). */
  forwardPasses = 0;

  constructor(
    model: GPT,
    private readonly kernels: NativeKernels,
  ) {
    if (model.lora) throw new Error('NativeDecoder: merge the LoRA adapters first (loadCheckpoint does)');
    this.config = model.config;
    this.weights = decoderWeights(model);
    this.headDim = this.config.dModel / this.config.nHeads;
  }

  /** Whether this decoder computes with these weights. */
  reads(weights: DecoderWeights): boolean {
    return weights === this.weights;
  }

  /** Slots open now (sequences being decoded). */
  get openSlots(): number {
    return this.slots.size;
  }

  /** A new, empty sequence; its id for forward(). closeSlot() it when done. */
  openSlot(): number {
    const { nLayers, maxSeqLen, dModel } = this.config;
    const cacheArray = (): Float32Array => this.spare.pop() ?? new Float32Array(maxSeqLen * dModel);
    const slot = this.nextSlot++;
    this.slots.set(slot, { keys: Array.from({ length: nLayers }, cacheArray), values: Array.from({ length: nLayers }, cacheArray), length: 0 });
    return slot;
  }

  closeSlot(slot: number): void {
    const cache = this.cacheOf(slot);
    if (this.spare.length < spareSlotsMax * 2 * this.config.nLayers) this.spare.push(...cache.keys, ...cache.values);
    this.slots.delete(slot);
  }

  /** Positions slot `slot` holds (its next token's position). */
  length(slot: number): number {
    return this.cacheOf(slot).length;
  }

  /** Slot `to` continues from what slot `from` holds (samples that share one prompt). */
  copySlot(from: number, to: number): void {
    const source = this.cacheOf(from);
    const target = this.cacheOf(to);
    const used = source.length * this.headDim;
    const headStride = this.config.maxSeqLen * this.headDim;
    const pairs = [...source.keys.map((k, i) => [k, target.keys[i]]), ...source.values.map((v, i) => [v, target.values[i]])];
    for (const [src, dst] of pairs) {
      for (let h = 0; h < this.config.nHeads; h++) dst.set(src.subarray(h * headStride, h * headStride + used), h * headStride);
    }
    target.length = source.length;
  }

  private cacheOf(slot: number): SlotCache {
    const cache = this.slots.get(slot);
    if (!cache) throw new Error(`NativeDecoder: slot ${slot} is not open`);
    return cache;
  }

  /**
   * Feed each input's tokens to its slot (after what the slot holds); returns the logits of each input's
   * last token, [inputs.length, vocabSize]. A slot appears at most once per call.
   */
  forward(inputs: readonly SlotInput[]): Float32Array {
    const segments = this.segmentsOf(inputs);
    const rows = inputs.reduce((n, s) => n + s.ids.length, 0);
    const { dModel, dFf } = this.config;
    const x = this.embed(inputs, segments, rows);
    const normed = new Float32Array(rows * dModel);
    const qkv = new Float32Array(rows * 3 * dModel);
    const attended = new Float32Array(rows * dModel);
    const hidden = new Float32Array(rows * dFf);
    const projected = new Float32Array(rows * dModel);
    this.weights.blocks.forEach((block, layer) => {
      layerNormRows(x, normed, rows, dModel, block.ln1);
      this.linear(normed, block.qkv, qkv, rows);
      for (const segment of segments) this.attend(qkv, attended, segment, layer);
      this.linear(attended, block.attnProj, projected, rows);
      addInPlace(x, projected);
      layerNormRows(x, normed, rows, dModel, block.ln2);
      this.linear(normed, block.fc, hidden, rows);
      this.gelu(hidden);
      this.linear(hidden, block.mlpProj, projected, rows);
      addInPlace(x, projected);
    });
    for (const s of segments) this.cacheOf(s.slot).length = s.past + s.count;
    this.forwardPasses++;
    return this.lastLogits(x, segments);
  }

  private segmentsOf(inputs: readonly SlotInput[]): Segment[] {
    const { maxSeqLen } = this.config;
    let row = 0;
    return inputs.map(({ slot, ids }) => {
      if (ids.length === 0) throw new Error(`NativeDecoder: no tokens for slot ${slot}`);
      const past = this.cacheOf(slot).length;
      if (past + ids.length > maxSeqLen) {
        throw new UserError(`sequence of ${past + ids.length} positions is longer than the model's context (maxSeqLen ${maxSeqLen})`);
      }
      const segment = { slot, row, count: ids.length, past };
      row += ids.length;
      return segment;
    });
  }

  /** x[r] = wte[id] * sqrt(dModel) + wpe[position]. */
  private embed(inputs: readonly SlotInput[], segments: readonly Segment[], rows: number): Float32Array {
    const { dModel, vocabSize } = this.config;
    const { wte, wpe } = this.weights;
    const scale = Math.sqrt(dModel);
    const x = new Float32Array(rows * dModel);
    segments.forEach((s, i) => {
      inputs[i].ids.forEach((id, t) => {
        if (!(id >= 0 && id < vocabSize)) throw new Error(`NativeDecoder: token id ${id} outside the vocabulary`);
        const out = (s.row + t) * dModel;
        const tok = id * dModel;
        const pos = (s.past + t) * dModel;
        for (let j = 0; j < dModel; j++) x[out + j] = wte[tok + j] * scale + wpe[pos + j];
      });
    });
    return x;
  }

  /** out = x @ W + b for `rows` rows (W stored [in, out], as gpt.ts stores it). */
  private linear(x: Float32Array, [weight, bias]: Pair, out: Float32Array, rows: number): void {
    const nOut = bias.length;
    const nIn = weight.length / nOut;
    const gemv = this.kernels.gemv;
    if (gemv && rows <= gemvRowsMax) {
      for (let r = 0; r < rows; r++) gemv(weight, x.subarray(r * nIn, (r + 1) * nIn), out.subarray(r * nOut, (r + 1) * nOut), bias, nIn, nOut, true);
      return;
    }
    // A small product: pieces of chunkRows rows, each on this thread (the addon splits 32+ rows over its pool).
    const step = rows * nIn * nOut < pooledMacsMin ? chunkRows : rows;
    for (let r = 0; r < rows; r += step) {
      const n = Math.min(step, rows - r);
      this.kernels.gemm(x.subarray(r * nIn, (r + n) * nIn), weight, out.subarray(r * nOut, (r + n) * nOut), bias, 1, n, nOut, nIn, false, false, 0, 0);
    }
  }

  /** x = x * 0.5 * (1 + erf(x / sqrt 2)) in place: GELU with erf, as fused.ts's gelu. */
  private gelu(x: Float32Array): void {
    this.kernels.gelu(x, x, x.length);
  }

  /**
   * One sequence's causal self-attention: its new keys and values go into the slot's cache, then each head
   * attends over the cache, softmax(q k^T / sqrt(headDim) + mask) v, written to the segment's rows of `out`.
   */
  private attend(qkv: Float32Array, out: Float32Array, s: Segment, layer: number): void {
    const { nHeads, dModel, maxSeqLen } = this.config;
    const hd = this.headDim;
    const T = s.count;
    const L = s.past + T;
    const cache = this.cacheOf(s.slot);
    const keys = cache.keys[layer];
    const values = cache.values[layer];
    // q [nHeads, T, hd], scaled here so the scores need no pass of their own.
    const q = new Float32Array(nHeads * T * hd);
    const scale = 1 / Math.sqrt(hd);
    for (let t = 0; t < T; t++) {
      const row = (s.row + t) * 3 * dModel;
      for (let h = 0; h < nHeads; h++) {
        const cacheAt = (h * maxSeqLen + s.past + t) * hd;
        const qAt = (h * T + t) * hd;
        for (let j = 0; j < hd; j++) {
          q[qAt + j] = qkv[row + h * hd + j] * scale;
          keys[cacheAt + j] = qkv[row + dModel + h * hd + j];
          values[cacheAt + j] = qkv[row + 2 * dModel + h * hd + j];
        }
      }
    }
    const scores = new Float32Array(nHeads * T * L);
    this.kernels.gemm(q, keys, scores, null, nHeads, T, L, hd, false, true, T * hd, maxSeqLen * hd);
    // Query t (position past + t) sees keys 0..past + t.
    for (let h = 0; h < nHeads; h++) {
      for (let t = 0; t + 1 < T; t++) scores.fill(maskedScore, (h * T + t) * L + s.past + t + 1, (h * T + t + 1) * L);
    }
    this.kernels.softmax(scores, scores, nHeads * T, L);
    const heads = new Float32Array(nHeads * T * hd);
    this.kernels.gemm(scores, values, heads, null, nHeads, T, hd, L, false, false, T * L, maxSeqLen * hd);
    // [nHeads, T, hd] -> rows [T, nHeads * hd]
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nHeads; h++) {
        out.set(heads.subarray((h * T + t) * hd, (h * T + t + 1) * hd), (s.row + t) * dModel + h * hd);
      }
    }
  }

  /** lnF of each segment's last row, times wte^T: [segments, vocabSize]. */
  private lastLogits(x: Float32Array, segments: readonly Segment[]): Float32Array {
    const { dModel, vocabSize } = this.config;
    const last = new Float32Array(segments.length * dModel);
    segments.forEach((s, i) => last.set(x.subarray((s.row + s.count - 1) * dModel, (s.row + s.count) * dModel), i * dModel));
    layerNormRows(last, last, segments.length, dModel, this.weights.lnF);
    const rows = segments.length;
    const logits = new Float32Array(rows * vocabSize);
    const { wte } = this.weights;
    const gemv = this.kernels.gemv;
    if (!gemv || rows > gemvRowsMax) {
      this.kernels.gemm(last, wte, logits, null, 1, rows, vocabSize, dModel, false, true, 0, 0);
    } else {
      for (let r = 0; r < rows; r++) gemv(wte, last.subarray(r * dModel, (r + 1) * dModel), logits.subarray(r * vocabSize, (r + 1) * vocabSize), null, vocabSize, dModel, false);
    }
    return logits;
  }
}

/** out[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta per row of `width` (out may be x). */
function layerNormRows(x: Float32Array, out: Float32Array, rows: number, width: number, [gamma, beta]: Pair): void {
  for (let r = 0; r < rows; r++) {
    const at = r * width;
    let mean = 0;
    for (let j = 0; j < width; j++) mean += x[at + j];
    mean /= width;
    let variance = 0;
    for (let j = 0; j < width; j++) variance += (x[at + j] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / width + layerNormEps);
    for (let j = 0; j < width; j++) out[at + j] = (x[at + j] - mean) * inv * gamma[j] + beta[j];
  }
}

function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}
