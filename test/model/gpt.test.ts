import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { UserError } from '../../src/common/errors.js';
import { countParameters, GPT, loadPreset, modelSizes, type ModelConfig } from '../../src/model/index.js';

const small: ModelConfig = { vocabSize: 50, dModel: 32, nLayers: 2, nHeads: 4, dFf: 64, maxSeqLen: 24, dropout: 0.1 };

function stats(values: Float32Array): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function argmaxLast(logits: tf.Tensor3D): number {
  return tf.tidy(() => {
    const [, T] = logits.shape;
    return logits.slice([0, T - 1, 0], [1, 1, -1]).reshape([-1]).argMax().dataSync()[0];
  });
}

describe('GPT', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('has the reference parameter counts at vocab 8000', () => {
    const expected = { tiny: 1_486_336, small: 5_338_624, medium: 23_273_472 };
    for (const size of modelSizes) assert.equal(countParameters({ ...loadPreset(size), vocabSize: 8000 }), expected[size], size);
    const tiny = new GPT({ ...loadPreset('tiny'), vocabSize: 8000 }, { seed: 1 });
    try {
      assert.equal(tiny.countParameters(), 1_486_336);
    } finally {
      tiny.dispose();
    }
  });

  it('initialises Normal(0, 0.02), residual projections scaled, LayerNorm 1/0, biases 0, and reproducibly', () => {
    const cfg: ModelConfig = { ...small, vocabSize: 2000, dModel: 64, dFf: 256 };
    const a = new GPT(cfg, { seed: 7 });
    const b = new GPT(cfg, { seed: 7 });
    const c = new GPT(cfg, { seed: 8 });
    try {
      const get = (m: GPT, name: string): Float32Array => m.parameters().find((p) => p.name === name)!.variable.dataSync() as Float32Array;
      const wte = stats(get(a, 'wte'));
      assert.ok(Math.abs(wte.mean) < 0.001 && Math.abs(wte.std - 0.02) < 0.001, `wte ${JSON.stringify(wte)}`);
      const proj = stats(get(a, 'h.0.mlp.proj.weight'));
      assert.ok(Math.abs(proj.std - 0.02 / Math.sqrt(2 * cfg.nLayers)) < 0.001, `mlp.proj std ${proj.std}`);
      assert.ok(get(a, 'h.1.ln1.gamma').every((v) => v === 1));
      assert.ok(get(a, 'h.1.attn.qkv.bias').every((v) => v === 0));
      assert.deepEqual(get(a, 'h.0.attn.qkv.weight'), get(b, 'h.0.attn.qkv.weight'));
      assert.notDeepEqual(get(a, 'h.0.attn.qkv.weight'), get(c, 'h.0.attn.qkv.weight'));
      // Seed 0 too, for every parameter: tfjs reads a seed of 0 as "none" (its first parameter was Math.random's).
      const zeros = [new GPT(cfg, { seed: 0 }), new GPT(cfg, { seed: 0 })];
      for (const p of zeros[0]!.parameters()) assert.deepEqual(get(zeros[0]!, p.name), get(zeros[1]!, p.name), `${p.name} at seed 0`);
      zeros.forEach((m) => m.dispose());
      const decayed = a.parameters().filter((p) => p.weightDecay).map((p) => p.name);
      assert.ok(decayed.every((n) => n.endsWith('.weight')) && decayed.length === 4 * cfg.nLayers, decayed.join(','));
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
    }
  });

  it('is causal: a later token never changes earlier logits', () => {
    const model = new GPT(small, { seed: 3 });
    try {
      const ids = [[5, 9, 1, 30, 7, 2, 44, 12]];
      const changed = [[5, 9, 1, 30, 8, 2, 44, 12]];
      const a = model.forward(tf.tensor2d(ids, undefined, 'int32'));
      const b = model.forward(tf.tensor2d(changed, undefined, 'int32'));
      assert.deepEqual(a.shape, [1, 8, small.vocabSize]);
      const before4 = (t: tf.Tensor3D): Float32Array => t.slice([0, 0, 0], [1, 4, -1]).dataSync() as Float32Array;
      assert.equal(maxAbsDiff(before4(a), before4(b)), 0);
      assert.ok(maxAbsDiff(a.dataSync(), b.dataSync()) > 1e-4, 'the changed position must change later logits');
      tf.dispose([a, b]);
    } finally {
      model.dispose();
    }
  });

  it('gives the same logits and the same greedy tokens with and without the KV cache', () => {
    const model = new GPT(small, { seed: 4 });
    try {
      const prompt = [3, 17, 22, 8];
      const full = model.forward(tf.tensor2d([[...prompt, 40, 41]], undefined, 'int32'));
      const cache = model.createCache(1);
      const p1 = model.forward(tf.tensor2d([prompt], undefined, 'int32'), { cache });
      const p2 = model.forward(tf.tensor2d([[40, 41]], undefined, 'int32'), { cache });
      assert.equal(cache.length, 6);
      const incremental = tf.concat([p1, p2], 1);
      assert.ok(maxAbsDiff(full.dataSync(), incremental.dataSync()) < 1e-4);
      tf.dispose([full, p1, p2, incremental]);
      cache.dispose();

      const steps = 12;
      const withCache: number[] = [];
      const c2 = model.createCache(1);
      let logits = model.forward(tf.tensor2d([prompt], undefined, 'int32'), { cache: c2 });
      for (let i = 0; i < steps; i++) {
        const next = argmaxLast(logits);
        withCache.push(next);
        logits.dispose();
        logits = model.forward(tf.tensor2d([[next]], undefined, 'int32'), { cache: c2 });
      }
      logits.dispose();
      c2.dispose();
      const seq = [...prompt];
      for (let i = 0; i < steps; i++) {
        const l = model.forward(tf.tensor2d([seq], undefined, 'int32'));
        seq.push(argmaxLast(l));
        l.dispose();
      }
      assert.deepEqual(withCache, seq.slice(prompt.length));
    } finally {
      model.dispose();
    }
  });

  it('refuses a sequence longer than its context, in one line', () => {
    const model = new GPT(small, { seed: 1 });
    try {
      const ids = tf.tensor2d([Array.from({ length: small.maxSeqLen + 1 }, () => 1)], undefined, 'int32');
      assert.throws(() => model.forward(ids), (e: unknown) => e instanceof UserError && /maxSeqLen 24/.test(e.message) && !e.message.includes('\n'));
      const cache = model.createCache(1);
      model.forward(tf.tensor2d([Array.from({ length: 20 }, () => 1)], undefined, 'int32'), { cache }).dispose();
      assert.throws(() => model.forward(tf.tensor2d([[1, 2, 3, 4, 5]], undefined, 'int32'), { cache }), /longer than the model's context/);
      cache.dispose();
      ids.dispose();
    } finally {
      model.dispose();
    }
  });

  it('applies dropout only when training, reproducibly for a given seed', () => {
    const model = new GPT(small, { seed: 5 });
    try {
      const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6]], undefined, 'int32');
      const evalA = model.forward(ids).dataSync();
      const evalB = model.forward(ids).dataSync();
      assert.equal(maxAbsDiff(evalA, evalB), 0);
      const t1 = model.forward(ids, { training: true, dropoutSeed: 'x' }).dataSync();
      const t2 = model.forward(ids, { training: true, dropoutSeed: 'x' }).dataSync();
      const t3 = model.forward(ids, { training: true, dropoutSeed: 'y' }).dataSync();
      assert.equal(maxAbsDiff(t1, t2), 0);
      assert.ok(maxAbsDiff(t1, t3) > 1e-4);
      assert.ok(maxAbsDiff(t1, evalA) > 1e-4);
    } finally {
      model.dispose();
    }
  });

  it('leaks no tensors per forward call', () => {
    const model = new GPT(small, { seed: 6 });
    try {
      const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32');
      model.forward(ids, { training: true }).dispose();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) model.forward(ids, { training: true }).dispose();
      assert.equal(tf.memory().numTensors, before);
      ids.dispose();
    } finally {
      model.dispose();
    }
  });
});
