/**
 * A GPT decoder as gptmed defines it, on the tfjs API:
 *   x = wte[idx] * sqrt(dModel) + wpe[pos]
 *   per block: x += attn(ln1(x)); x += mlp(ln2(x))      (pre-LayerNorm)
 *   logits = lnF(x) @ wte^T                               (LM head tied to the token embedding)
 * Causal multi-head self-attention, GELU (erf) MLP, biases on every linear layer.
 * Init Normal(0, 0.02); the two residual projections of each block use
 * 0.02 / sqrt(2 * nLayers) (GPT-2's scaled init) so the residual stream's
 * variance does not grow with depth. Biases 0, LayerNorm gains 1.
 *
 * Linear weights are stored [in, out] so the forward product needs no transpose.
 *
 * With LoRA adapters (src/model/lora.ts) on a linear layer (the base weights frozen, only A and B train):
 *   y = x @ W + b + (alpha / r) * (loraDropout(x) @ A) @ B      A [in, r] Normal(0, 1/r), B [r, out] zeros
 * so a model with fresh adapters computes exactly what the base does. Without adapters nothing changes.
 */
import * as tf from '@tensorflow/tfjs';
import { dropout, rowKey } from '../backend/dropout.js';
import { UserError } from '../common/errors.js';
import type { ModelConfig } from './config.js';
import { causalAttentionWeights, gelu, layerNorm } from './fused.js';
import { adapterSpecs, loraScale, type LoraConfig, type LoraTarget } from './lora.js';

const initStd = 0.02;

type Init = 'normal' | 'residualNormal' | 'zeros' | 'ones';

export interface ParameterSpec {
  name: string;
  shape: number[];
  init: Init;
  /**
   * Decoupled weight decay applies to the linear layers' 2-D weight matrices
   * only: not to LayerNorm gains, biases, or the embeddings (the token
   * embedding is also the LM head; decaying it shrinks rare tokens' rows).
   */
  weightDecay: boolean;
}

/** Every parameter of a GPT with this config, in a fixed order (the order of saved weights). */
export function parameterSpecs(c: ModelConfig): ParameterSpec[] {
  const specs: ParameterSpec[] = [
    { name: 'wte', shape: [c.vocabSize, c.dModel], init: 'normal', weightDecay: false },
    { name: 'wpe', shape: [c.maxSeqLen, c.dModel], init: 'normal', weightDecay: false },
  ];
  const linear = (name: string, nIn: number, nOut: number, init: Init): void => {
    specs.push({ name: `${name}.weight`, shape: [nIn, nOut], init, weightDecay: true });
    specs.push({ name: `${name}.bias`, shape: [nOut], init: 'zeros', weightDecay: false });
  };
  const layerNorm = (name: string): void => {
    specs.push({ name: `${name}.gamma`, shape: [c.dModel], init: 'ones', weightDecay: false });
    specs.push({ name: `${name}.beta`, shape: [c.dModel], init: 'zeros', weightDecay: false });
  };
  for (let i = 0; i < c.nLayers; i++) {
    layerNorm(`h.${i}.ln1`);
    linear(`h.${i}.attn.qkv`, c.dModel, 3 * c.dModel, 'normal');
    linear(`h.${i}.attn.proj`, c.dModel, c.dModel, 'residualNormal');
    layerNorm(`h.${i}.ln2`);
    linear(`h.${i}.mlp.fc`, c.dModel, c.dFf, 'normal');
    linear(`h.${i}.mlp.proj`, c.dFf, c.dModel, 'residualNormal');
  }
  layerNorm('lnF');
  return specs;
}

/** Parameter count of a config without building it. */
export function countParameters(c: ModelConfig): number {
  return parameterSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

export interface Parameter extends ParameterSpec {
  variable: tf.Variable;
}

/**
 * Keys and values of past positions, one pair per layer, for incremental
 * decoding: forward() with a cache takes only the new tokens.
 */
export class KVCache {
  /** Positions already in the cache; the next token's position. */
  length = 0;
  readonly layers: Array<{ k: tf.Tensor4D | null; v: tf.Tensor4D | null }>;

  constructor(
    readonly batch: number,
    nLayers: number,
  ) {
    this.layers = Array.from({ length: nLayers }, () => ({ k: null, v: null }));
  }

  dispose(): void {
    for (const layer of this.layers) {
      layer.k?.dispose();
      layer.v?.dispose();
      layer.k = null;
      layer.v = null;
    }
    this.length = 0;
  }
}

export interface ForwardOptions {
  /** Dropout on (training) or off (evaluation, generation). Default off. */
  training?: boolean;
  /** Incremental decoding: `idx` holds only new tokens; positions continue from cache.length. */
  cache?: KVCache;
  /** Seed for this call's dropout masks (the trainer derives one per step for exact resume). */
  dropoutSeed?: number | string;
  /**
   * Index of idx's first row within the batch the seed belongs to. Each row's masks are a function of
   * (seed, site, row), so a batch split into micro-batches gets the same masks as the whole batch.
   */
  dropoutRowOffset?: number;
}

export interface GPTOptions {
  /** Seed of the random init. */
  seed?: number;
  /** Weights to start from instead of a random init (name -> values, as parameterSpecs orders them). */
  weights?: ReadonlyMap<string, Float32Array>;
  /** LoRA adapters on the frozen weights: fresh (seeded by `seed`) or `weights` (adapterSpecs names). */
  lora?: { config: LoraConfig; weights?: ReadonlyMap<string, Float32Array> };
}

interface Adapter {
  a: tf.Variable;
  b: tf.Variable;
  scale: number;
}

interface Block {
  ln1: [tf.Variable, tf.Variable];
  qkv: [tf.Variable, tf.Variable];
  attnProj: [tf.Variable, tf.Variable];
  ln2: [tf.Variable, tf.Variable];
  fc: [tf.Variable, tf.Variable];
  mlpProj: [tf.Variable, tf.Variable];
  /** The block's adapters, by target (none without LoRA). */
  lora: Partial<Record<LoraTarget, Adapter>>;
}

type Dropout = (t: tf.Tensor) => tf.Tensor;

export class GPT {
  readonly config: ModelConfig;
  private readonly params: Parameter[];
  private readonly wte: tf.Variable;
  private readonly wpe: tf.Variable;
  private readonly blocks: Block[];
  private readonly lnF: [tf.Variable, tf.Variable];
  /** The LoRA adapters (empty without LoRA), in adapterSpecs order, and their config. */
  private readonly adapters: Parameter[];
  readonly lora: LoraConfig | null;
  /** Dropout seeds for calls that give none. */
  private unseededDropoutCalls = 0;

  constructor(config: ModelConfig, opts: GPTOptions = {}) {
    this.config = { ...config };
    const seed = opts.seed ?? 0;
    const residualStd = initStd / Math.sqrt(2 * config.nLayers);
    this.params = parameterSpecs(config).map((spec, i) => {
      const given = opts.weights?.get(spec.name);
      let init: tf.Tensor;
      if (given) {
        init = givenTensor(spec.name, spec.shape, given);
      } else if (opts.weights) {
        throw new UserError(`weights: parameter ${spec.name} is missing`);
      } else if (spec.init === 'zeros') {
        init = tf.zeros(spec.shape);
      } else if (spec.init === 'ones') {
        init = tf.ones(spec.shape);
      } else {
        // One derived seed per parameter: the init does not depend on the order tensors are created in.
        init = tf.randomNormal(spec.shape, 0, spec.init === 'normal' ? initStd : residualStd, 'float32', parameterSeed(seed, i));
      }
      return { ...spec, variable: toVariable(init) };
    });
    this.lora = opts.lora ? { ...opts.lora.config, targets: [...opts.lora.config.targets] } : null;
    this.adapters = this.lora ? makeAdapters(config, this.lora, opts.lora?.weights, seed) : [];
    const p = new Map(this.params.map((x) => [x.name, x.variable]));
    const get = (name: string): tf.Variable => p.get(name)!;
    const pair = (name: string, a: string, b: string): [tf.Variable, tf.Variable] => [get(`${name}.${a}`), get(`${name}.${b}`)];
    this.wte = get('wte');
    this.wpe = get('wpe');
    this.blocks = Array.from({ length: config.nLayers }, (_, i) => ({
      ln1: pair(`h.${i}.ln1`, 'gamma', 'beta'),
      qkv: pair(`h.${i}.attn.qkv`, 'weight', 'bias'),
      attnProj: pair(`h.${i}.attn.proj`, 'weight', 'bias'),
      ln2: pair(`h.${i}.ln2`, 'gamma', 'beta'),
      fc: pair(`h.${i}.mlp.fc`, 'weight', 'bias'),
      mlpProj: pair(`h.${i}.mlp.proj`, 'weight', 'bias'),
      lora: this.blockAdapters(i),
    }));
    this.lnF = pair('lnF', 'gamma', 'beta');
  }

  /** All parameters in the fixed order of parameterSpecs (the base weights of a model with adapters). */
  parameters(): readonly Parameter[] {
    return this.params;
  }

  /** What training updates: the adapters of a model with LoRA (the base is frozen), else every parameter. */
  trainableParameters(): readonly Parameter[] {
    return this.lora ? this.adapters : this.params;
  }

  countParameters(): number {
    return this.params.reduce((n, p) => n + p.variable.size, 0);
  }

  createCache(batch = 1): KVCache {
    return new KVCache(batch, this.config.nLayers);
  }

  /** Logits [B, T, vocabSize] for token ids [B, T]. */
  forward(idx: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    const { dModel, nHeads, maxSeqLen, vocabSize } = this.config;
    const [B, T] = idx.shape;
    const cache = opts.cache;
    const past = cache?.length ?? 0;
    if (past + T > maxSeqLen) {
      throw new UserError(`sequence of ${past + T} positions is longer than the model's context (maxSeqLen ${maxSeqLen})`);
    }
    if (cache && cache.batch !== B) throw new UserError(`KV cache was made for batch ${cache.batch}, got batch ${B}`);
    const dropout = this.dropoutFn(opts);
    const loraDropout = this.lora ? this.dropoutFn(opts, this.lora.dropout, 'lora') : (t: tf.Tensor) => t;

    const logits = tf.tidy(() => {
      const positions = tf.range(past, past + T, 1, 'int32');
      let x = tf.add(tf.mul(tf.gather(this.wte, idx), Math.sqrt(dModel)), tf.gather(this.wpe, positions)) as tf.Tensor3D;
      x = dropout(x) as tf.Tensor3D;
      this.blocks.forEach((block, i) => {
        x = tf.add(x, this.attention(layerNorm(x, block.ln1), block, past, nHeads, { dropout, loraDropout }, cache, i));
        x = tf.add(x, this.mlp(layerNorm(x, block.ln2), block, { dropout, loraDropout }));
      });
      x = layerNorm(x, this.lnF);
      return tf.matMul(x.reshape([B * T, dModel]), this.wte, false, true).reshape([B, T, vocabSize]) as tf.Tensor3D;
    });
    if (cache) cache.length = past + T;
    return logits;
  }

  /** Release the weights. */
  dispose(): void {
    for (const p of [...this.params, ...this.adapters]) p.variable.dispose();
  }

  private blockAdapters(layer: number): Partial<Record<LoraTarget, Adapter>> {
    if (!this.lora) return {};
    const byName = new Map(this.adapters.map((p) => [p.name, p.variable]));
    const scale = loraScale(this.lora);
    return Object.fromEntries(
      this.lora.targets.map((t) => [t, { a: byName.get(`h.${layer}.${t}.lora_a`)!, b: byName.get(`h.${layer}.${t}.lora_b`)!, scale }]),
    ) as Partial<Record<LoraTarget, Adapter>>;
  }

  private attention(
    x: tf.Tensor3D,
    block: Block,
    past: number,
    nHeads: number,
    { dropout, loraDropout }: { dropout: Dropout; loraDropout: Dropout },
    cache: KVCache | undefined,
    layer: number,
  ): tf.Tensor3D {
    const [B, T, d] = x.shape;
    const headDim = d / nHeads;
    const qkv = linear(x, block.qkv, block.lora['attn.qkv'], loraDropout);
    const [q, k, v] = tf.split(qkv, 3, 2);
    // [B, T, d] -> [B, nHeads, T, headDim]
    const heads = (t: tf.Tensor): tf.Tensor4D => t.reshape([B, T, nHeads, headDim]).transpose([0, 2, 1, 3]);
    let keys = heads(k);
    let values = heads(v);
    if (cache) {
      const entry = cache.layers[layer];
      if (entry.k && entry.v) {
        keys = tf.concat([entry.k, keys], 2);
        values = tf.concat([entry.v, values], 2);
        entry.k.dispose();
        entry.v.dispose();
      }
      entry.k = tf.keep(keys);
      entry.v = tf.keep(values);
    }
    const scores = tf.matMul(heads(q), keys, false, true) as tf.Tensor4D;
    const weights = dropout(causalAttentionWeights(scores, 1 / Math.sqrt(headDim), past));
    const y = tf.matMul(weights, values).transpose([0, 2, 1, 3]).reshape([B, T, d]) as tf.Tensor3D;
    return dropout(linear(y, block.attnProj, block.lora['attn.proj'], loraDropout)) as tf.Tensor3D;
  }

  private mlp(x: tf.Tensor3D, block: Block, { dropout, loraDropout }: { dropout: Dropout; loraDropout: Dropout }): tf.Tensor3D {
    const hidden = gelu(linear(x, block.fc, block.lora['mlp.fc'], loraDropout));
    return dropout(linear(hidden, block.mlpProj, block.lora['mlp.proj'], loraDropout)) as tf.Tensor3D;
  }

  /**
   * Dropout for one forward call: every site's mask row r (along the batch axis) is keyed by (call seed, site,
   * dropoutRowOffset + r), and its elements by a counter hash of that key (src/backend/dropout.ts): no random
   * state, the same mask on every backend, nothing mask-sized built here. The adapters' dropout (`rate` and
   * `kind` 'lora') has sites of its own.
   */
  private dropoutFn(opts: ForwardOptions, rate = this.config.dropout, kind = ''): Dropout {
    if (!opts.training || rate === 0) return (t) => t;
    const seed = opts.dropoutSeed ?? this.unseededDropoutCalls++;
    const callSeed = kind ? `${seed}:${kind}` : seed;
    const rowOffset = opts.dropoutRowOffset ?? 0;
    let site = 0;
    return (t) => {
      const rows = t.shape[0]!;
      const siteSeed = `${callSeed}:${site++}`;
      const keys = new Int32Array(2 * rows);
      for (let r = 0; r < rows; r++) keys.set(rowKey(`${siteSeed}:${rowOffset + r}`), 2 * r);
      return dropout(t, keys, rate);
    };
  }
}

/** x @ W + b over the last axis, as one 2-D product; plus (alpha / r) * (loraDropout(x) @ A) @ B with an adapter. */
function linear(x: tf.Tensor3D, [weight, bias]: [tf.Variable, tf.Variable], adapter?: Adapter, loraDropout?: Dropout): tf.Tensor3D {
  const [B, T, nIn] = x.shape;
  const nOut = weight.shape[1]!;
  const flat = x.reshape([B * T, nIn]);
  // The bias added inside the product: no separate [B * T, out] sum kept for the backward pass.
  const y = tf.fused.matMul({ a: flat, b: weight, bias });
  if (!adapter) return y.reshape([B, T, nOut]);
  // Masked as [B, T, in]: a row's masks depend on its index in the step's batch (see dropoutFn), not on B * T.
  const input = loraDropout ? loraDropout(x).reshape([B * T, nIn]) : flat;
  const low = tf.matMul(tf.matMul(input, adapter.a), adapter.b);
  return tf.add(y, tf.mul(low, adapter.scale)).reshape([B, T, nOut]);
}

/**
 * The init seed of parameter i. tfjs takes a seed of 0 for "no seed" (Math.random), so seed 0's first
 * parameter (wte) gets another fixed seed: every other (seed, i) keeps seed * 1000 + i.
 */
function parameterSeed(seed: number, i: number): number {
  const derived = seed * 1000 + i;
  return derived === 0 ? 0x5eed : derived;
}

/** A given parameter's values as a tensor of its shape. */
function givenTensor(name: string, shape: number[], given: Float32Array): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  if (given.length !== size) throw new UserError(`weights for ${name}: ${given.length} values, expected ${size} (shape ${shape.join('x')})`);
  return tf.tensor(given, shape, 'float32');
}

function toVariable(init: tf.Tensor): tf.Variable {
  const variable = tf.variable(init, true);
  init.dispose();
  return variable;
}

/** The adapters of a model: `given` ones, else fresh (A Normal(0, 1/r) from a seed derived per tensor, B zeros). */
function makeAdapters(config: ModelConfig, lora: LoraConfig, given: ReadonlyMap<string, Float32Array> | undefined, seed: number): Parameter[] {
  return adapterSpecs(config, lora).map((spec, i) => {
    const values = given?.get(spec.name);
    if (given && !values) throw new UserError(`adapters: ${spec.name} is missing`);
    const init = values
      ? givenTensor(spec.name, spec.shape, values)
      : spec.init === 'zeros'
        ? tf.zeros(spec.shape)
        : tf.randomNormal(spec.shape, 0, 1 / lora.rank, 'float32', seed * 1000 + 500 + i);
    // Decoupled weight decay applies to both factors (as torch's AdamW over PEFT's trainable parameters).
    return { name: spec.name, shape: spec.shape, init: spec.init === 'zeros' ? 'zeros' : 'normal', weightDecay: true, variable: toVariable(init) };
  });
}
