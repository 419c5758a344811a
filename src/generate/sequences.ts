/**
 * The model as the decode loop sees it: several sequences that share one prompt, each extended one
 * token at a time, each step returning every extended sequence's next-token logits.
 *
 * Three ways to compute that, the same logits within float rounding:
 * - native: src/model/native-decoder.ts, where the native kernels are loaded and the backend runs on
 *   the CPU inside this process (wasm, cpu). Sequences are decoded together, one forward per step, and
 *   so are concurrent decodes on the same model (SharedForward). GPTMED_FAST_KERNELS=0 turns it off, as
 *   it turns off the training kernels.
 * - tfjs with a KV cache per sequence (tfjs-node, GPU backends, a model with unmerged adapters):
 *   GPT.forward, one sequence at a time; the prompt is fed once and its cache copied.
 * - tfjs without a cache (useCache false, for the identity test and the benchmark): every step
 *   re-reads each whole sequence.
 */
import * as tf from '@tensorflow/tfjs';
import { fastKernelsSwitch } from '../backend/fast-kernels.js';
import { loadNativeKernels } from '../backend/native.js';
import type { GPT, KVCache } from '../model/gpt.js';
import { nativeDecoderFor, type NativeDecoder, type SlotInput } from '../model/native-decoder.js';

export interface SequenceDecoder {
  /** Which forward runs, for benchmarks and tests. */
  readonly kind: 'native' | 'tfjs-cache' | 'tfjs';
  /** Feed the prompt to every sequence; the logits of its last position (the same for all). */
  prompt(ids: readonly number[]): Promise<Float32Array>;
  /** Sequence seqs[i] takes tokens[i]; each one's next-token logits, in the same order. */
  next(seqs: readonly number[], tokens: readonly number[]): Promise<Float32Array[]>;
  dispose(): void;
}

/** 'auto': the native forward where it can run; 'tfjs': GPT.forward always (to compare). */
export type ForwardChoice = 'auto' | 'tfjs';

/** A decoder for `count` sequences of `model`. */
export function openSequences(model: GPT, count: number, opts: { useCache?: boolean; forward?: ForwardChoice } = {}): SequenceDecoder {
  if (!(opts.useCache ?? true)) return new UncachedSequences(model, count);
  const kernels = (opts.forward ?? 'auto') === 'auto' ? nativeKernelsForDecoding(model) : null;
  return kernels ? new NativeSequences(nativeDecoderFor(model, kernels), count) : new CachedSequences(model, count);
}

/** The native kernels, where the native forward can serve this model on the current backend; else null. */
function nativeKernelsForDecoding(model: GPT): ReturnType<typeof loadNativeKernels>['kernels'] {
  if (model.lora || process.env[fastKernelsSwitch] === '0') return null;
  // Other backends keep their tensors elsewhere (libtensorflow, a GPU): GPT.forward serves them.
  if (!['wasm', 'cpu'].includes(tf.getBackend())) return null;
  return loadNativeKernels().kernels;
}

/**
 * The forward passes of every native decode running on one model. A decode alone on the model runs its
 * forward at once; while others run, its inputs wait for the next turn of the event loop, where every
 * decode that stepped in this turn (each yields once a token, decode.ts) joins one forward pass: the
 * server's concurrent requests are decoded together as --num-samples are. A forward that fails fails
 * every decode in it.
 */
class SharedForward {
  private pending: Array<{ inputs: SlotInput[]; resolve: (logits: Float32Array) => void; reject: (err: unknown) => void }> = [];
  private flushing = false;

  constructor(readonly decoder: NativeDecoder) {}

  /** Logits [inputs.length, vocabSize] for a decode that holds `ownSlots` of the decoder's open slots. */
  run(inputs: SlotInput[], ownSlots: number): Promise<Float32Array> {
    if (this.pending.length === 0 && this.decoder.openSlots === ownSlots) return Promise.resolve(this.decoder.forward(inputs));
    return new Promise((resolve, reject) => {
      this.pending.push({ inputs, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushing = false;
    const waiting = this.pending;
    this.pending = [];
    const vocab = this.decoder.config.vocabSize;
    try {
      const logits = this.decoder.forward(waiting.flatMap((w) => w.inputs));
      let row = 0;
      for (const w of waiting) {
        w.resolve(logits.subarray(row * vocab, (row + w.inputs.length) * vocab));
        row += w.inputs.length;
      }
    } catch (err) {
      for (const w of waiting) w.reject(err);
    }
  }
}

const sharedForwards = new WeakMap<NativeDecoder, SharedForward>();

class NativeSequences implements SequenceDecoder {
  readonly kind = 'native';
  private readonly shared: SharedForward;
  private readonly slots: number[];

  constructor(decoder: NativeDecoder, count: number) {
    if (!sharedForwards.has(decoder)) sharedForwards.set(decoder, new SharedForward(decoder));
    this.shared = sharedForwards.get(decoder)!;
    this.slots = Array.from({ length: count }, () => decoder.openSlot());
  }

  async prompt(ids: readonly number[]): Promise<Float32Array> {
    const logits = await this.shared.run([{ slot: this.slots[0], ids }], this.slots.length);
    for (const slot of this.slots.slice(1)) this.shared.decoder.copySlot(this.slots[0], slot);
    return logits;
  }

  async next(seqs: readonly number[], tokens: readonly number[]): Promise<Float32Array[]> {
    const logits = await this.shared.run(seqs.map((seq, i) => ({ slot: this.slots[seq], ids: [tokens[i]] })), this.slots.length);
    const vocab = this.shared.decoder.config.vocabSize;
    return seqs.map((_, i) => logits.subarray(i * vocab, (i + 1) * vocab));
  }

  dispose(): void {
    for (const slot of this.slots) this.shared.decoder.closeSlot(slot);
  }
}

/** Logits of the last position after feeding `ids` (the new tokens, when a cache is given). */
async function lastLogits(model: GPT, ids: readonly number[], cache?: KVCache): Promise<Float32Array> {
  const { vocabSize } = model.config;
  const last = tf.tidy(() => {
    const logits = model.forward(tf.tensor2d([...ids], [1, ids.length], 'int32'), { cache });
    return logits.slice([0, ids.length - 1, 0], [1, 1, vocabSize]).reshape([vocabSize]);
  });
  try {
    return (await last.data()) as Float32Array;
  } finally {
    last.dispose();
  }
}

class CachedSequences implements SequenceDecoder {
  readonly kind = 'tfjs-cache';
  private readonly caches: KVCache[];

  constructor(
    private readonly model: GPT,
    count: number,
  ) {
    this.caches = Array.from({ length: count }, () => model.createCache(1));
  }

  async prompt(ids: readonly number[]): Promise<Float32Array> {
    const [first, ...rest] = this.caches;
    const logits = await lastLogits(this.model, ids, first);
    for (const cache of rest) {
      cache.layers.forEach((layer, i) => {
        layer.k = tf.keep(first.layers[i].k!.clone());
        layer.v = tf.keep(first.layers[i].v!.clone());
      });
      cache.length = first.length;
    }
    return logits;
  }

  async next(seqs: readonly number[], tokens: readonly number[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < seqs.length; i++) out.push(await lastLogits(this.model, [tokens[i]], this.caches[seqs[i]]));
    return out;
  }

  dispose(): void {
    for (const cache of this.caches) cache.dispose();
  }
}

class UncachedSequences implements SequenceDecoder {
  readonly kind = 'tfjs';
  private readonly sequences: number[][];

  constructor(
    private readonly model: GPT,
    count: number,
  ) {
    this.sequences = Array.from({ length: count }, () => []);
  }

  async prompt(ids: readonly number[]): Promise<Float32Array> {
    for (const s of this.sequences) s.push(...ids);
    return lastLogits(this.model, ids);
  }

  async next(seqs: readonly number[], tokens: readonly number[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < seqs.length; i++) {
      this.sequences[seqs[i]].push(tokens[i]);
      out.push(await lastLogits(this.model, this.sequences[seqs[i]]));
    }
    return out;
  }

  dispose(): void {}
}
