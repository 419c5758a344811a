/**
 * The backward pass is right: the custom loss gradient equals the gradient of
 * the textbook formula, the model's gradients agree with a finite difference,
 * and the wasm backend (with the kernels we register for it) computes the same
 * gradients as the pure-JS cpu backend.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { GPT, weightedCrossEntropy, type ModelConfig } from '../../src/model/index.js';

const config: ModelConfig = { vocabSize: 40, dModel: 16, nLayers: 2, nHeads: 2, dFf: 32, maxSeqLen: 16, dropout: 0 };
const ids = [
  [1, 5, 9, 3, 7, 7, 2, 30],
  [4, 4, 0, 12, 39, 6, 8, 1],
];
const targets = [
  [5, 9, 3, 7, 7, 2, 30, 11],
  [4, 0, 12, 39, 6, 8, 1, 0],
];
// Position weights: padding targets (id 0) and some "prompt" positions do not count.
const weights = [
  [0, 0, 1, 1, 1, 1, 1, 1],
  [1, 0, 1, 1, 1, 1, 1, 0],
];
const counted = weights.flat().reduce((a, b) => a + b, 0);

function lossOf(model: GPT): tf.Scalar {
  const logits = model.forward(tf.tensor2d(ids, undefined, 'int32'));
  return weightedCrossEntropy(logits, tf.tensor2d(targets, undefined, 'int32'), tf.tensor2d(weights), 1 / counted);
}

/** Loss and gradients (by parameter name) of a fresh seeded model on the current backend. */
function lossAndGrads(): { loss: number; grads: Map<string, Float32Array> } {
  const model = new GPT(config, { seed: 11 });
  try {
    const { value, grads } = tf.variableGrads(() => lossOf(model), model.parameters().map((p) => p.variable));
    const out = new Map(model.parameters().map((p) => [p.name, grads[p.variable.name].dataSync() as Float32Array]));
    const loss = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads)]);
    return { loss, grads: out };
  } finally {
    model.dispose();
  }
}

describe('gradients', () => {
  it('the custom cross-entropy gradient equals the textbook formula (wasm and cpu)', async () => {
    for (const device of ['wasm', 'cpu'] as const) {
      await initBackend(device);
      const logits = tf.randomNormal([2, 8, 40], 0, 2, 'float32', 3) as tf.Tensor3D;
      const y = tf.tensor2d(targets, undefined, 'int32');
      const w = tf.tensor2d(weights);
      const ours = tf.grad((l: tf.Tensor) => weightedCrossEntropy(l as tf.Tensor3D, y, w, 1 / counted))(logits);
      const textbook = (l: tf.Tensor): tf.Scalar =>
        tf.div(tf.sum(tf.mul(tf.neg(tf.sum(tf.mul(tf.logSoftmax(l), tf.cast(tf.oneHot(y, 40), 'float32')), -1)), w)), counted);
      const reference = tf.grad(textbook)(logits);
      const lossDiff = Math.abs(weightedCrossEntropy(logits, y, w, 1 / counted).dataSync()[0] - textbook(logits).dataSync()[0]);
      assert.ok(lossDiff < 1e-5, `${device}: loss differs by ${lossDiff}`);
      const gradDiff = tf.max(tf.abs(tf.sub(ours, reference))).dataSync()[0];
      assert.ok(gradDiff < 1e-6, `${device}: gradient differs by ${gradDiff}`);
      tf.dispose([logits, y, w, ours, reference]);
    }
  });

  it('model gradients match a finite difference along a random direction (cpu, float32)', async () => {
    await initBackend('cpu');
    const { grads } = lossAndGrads();
    const model = new GPT(config, { seed: 11 });
    try {
      // Directional derivative: sum(g . v) vs (L(p + eps v) - L(p - eps v)) / 2 eps.
      const params = model.parameters();
      const directions = params.map((p, i) => tf.randomNormal(p.shape, 0, 1, 'float32', 100 + i));
      const originals = params.map((p) => tf.clone(p.variable));
      const analytic = params.reduce((sum, p, i) => sum + tf.sum(tf.mul(tf.tensor(grads.get(p.name)!, p.shape), directions[i])).dataSync()[0], 0);
      const eps = 1e-3;
      const lossAt = (sign: number): number => {
        params.forEach((p, i) => p.variable.assign(tf.add(originals[i], tf.mul(directions[i], sign * eps))));
        return lossOf(model).dataSync()[0];
      };
      const numeric = (lossAt(1) - lossAt(-1)) / (2 * eps);
      assert.ok(Math.abs(numeric - analytic) < 0.02 * Math.abs(analytic) + 1e-3, `numeric ${numeric}, analytic ${analytic}`);
    } finally {
      model.dispose();
    }
  });

  it('wasm computes the same loss and gradients as the cpu backend', async () => {
    await initBackend('cpu');
    const cpu = lossAndGrads();
    await initBackend('wasm');
    const wasm = lossAndGrads();
    assert.ok(Math.abs(cpu.loss - wasm.loss) < 1e-5, `loss cpu ${cpu.loss} wasm ${wasm.loss}`);
    for (const [name, g] of cpu.grads) {
      const w = wasm.grads.get(name)!;
      let scale = 0;
      let diff = 0;
      for (let i = 0; i < g.length; i++) {
        scale = Math.max(scale, Math.abs(g[i]));
        diff = Math.max(diff, Math.abs(g[i] - w[i]));
      }
      assert.ok(diff <= 1e-4 * scale + 1e-7, `${name}: max difference ${diff} (max |g| ${scale})`);
    }
    // The embedding gradient (UnsortedSegmentSum, which we register for wasm) is not zero.
    assert.ok(wasm.grads.get('wte')!.some((v) => v !== 0));
  });
});
