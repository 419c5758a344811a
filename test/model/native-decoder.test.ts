/**
 * The native decoding forward (src/model/native-decoder.ts) against GPT.forward: logits of the prompt
 * and of every cached step within float rounding, for one sequence and for several decoded together.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { loadNativeKernels, type NativeKernels } from '../../src/backend/native.js';
import { GPT, type ModelConfig } from '../../src/model/index.js';
import { NativeDecoder, nativeDecoderFor } from '../../src/model/native-decoder.js';

const config: ModelConfig = { vocabSize: 61, dModel: 32, nLayers: 2, nHeads: 4, dFf: 80, maxSeqLen: 24, dropout: 0 };
const tolerance = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** GPT.forward's logits of the last position of `ids`, without a cache. */
function referenceLogits(model: GPT, ids: readonly number[]): Float32Array {
  return tf.tidy(() => {
    const logits = model.forward(tf.tensor2d([...ids], [1, ids.length], 'int32'));
    return logits.slice([0, ids.length - 1, 0], [1, 1, -1]).dataSync() as Float32Array;
  });
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

const kernelsLoaded = loadNativeKernels().kernels;

describe('NativeDecoder', { skip: kernelsLoaded ? false : 'the native kernels are not built here' }, () => {
  let kernels: NativeKernels;
  let model: GPT;
  before(async () => {
    await initBackend('wasm');
    kernels = kernelsLoaded!;
    // Weights large enough that the layers matter (the default init makes every block nearly the identity).
    model = new GPT(config, { seed: 3 });
    for (const p of model.parameters()) p.variable.assign(tf.randomNormal(p.shape, 0, 0.3, 'float32', p.name.length));
  });

  it('matches GPT.forward for the prompt and for every cached step, and decodes greedily alike', () => {
    const prompt = [5, 17, 3, 42, 8, 1, 60];
    const decoder = new NativeDecoder(model, kernels);
    const slot = decoder.openSlot();
    let logits = decoder.forward([{ slot, ids: prompt }]);
    const ids = [...prompt];
    for (let step = 0; ids.length < config.maxSeqLen; step++) {
      const reference = referenceLogits(model, ids);
      assert.ok(maxAbsDiff(logits, reference) < tolerance, `step ${step}: ${maxAbsDiff(logits, reference)}`);
      assert.equal(argmax(logits), argmax(reference), `step ${step}`);
      ids.push(argmax(reference));
      if (ids.length < config.maxSeqLen) logits = decoder.forward([{ slot, ids: [ids[ids.length - 1]] }]);
    }
    assert.equal(decoder.length(slot), config.maxSeqLen - 1);
    assert.throws(() => decoder.forward([{ slot, ids: [1, 2] }]), /longer than the model's context/);
  });

  it('feeds a prompt longer than one chunk of rows (products in pieces) alike', () => {
    const prompt = Array.from({ length: 21 }, (_, i) => (i * 7) % config.vocabSize);
    const decoder = new NativeDecoder(model, kernels);
    const logits = decoder.forward([{ slot: decoder.openSlot(), ids: prompt }]);
    assert.ok(maxAbsDiff(logits, referenceLogits(model, prompt)) < tolerance);
  });

  it('decodes several sequences together as each alone, from a shared prompt or not', () => {
    const together = new NativeDecoder(model, kernels);
    for (let i = 0; i < 3; i++) assert.equal(together.openSlot(), i);
    together.forward([{ slot: 0, ids: [1, 2, 3] }]);
    together.copySlot(0, 1);
    together.forward([{ slot: 2, ids: [9, 8] }]);
    // Slots at different lengths, fed different tokens in one forward.
    const steps = [
      [{ slot: 0, ids: [4] }, { slot: 1, ids: [7] }, { slot: 2, ids: [6, 5] }],
      [{ slot: 2, ids: [11] }, { slot: 0, ids: [12] }],
    ];
    const sequences: Record<number, number[]> = { 0: [1, 2, 3], 1: [1, 2, 3], 2: [9, 8] };
    for (const step of steps) {
      const logits = together.forward(step);
      step.forEach(({ slot, ids }, i) => {
        sequences[slot].push(...ids);
        const alone = referenceLogits(model, sequences[slot]);
        const got = logits.subarray(i * config.vocabSize, (i + 1) * config.vocabSize);
        assert.ok(maxAbsDiff(got, alone) < tolerance, `slot ${slot}: ${maxAbsDiff(got, alone)}`);
      });
    }
  });

  it('computes alike without gemv (a BLAS lacking cblas_sgemv: every product through gemm)', () => {
    const withoutGemv = Object.create(kernels, { gemv: { value: undefined } }) as NativeKernels;
    const decoder = new NativeDecoder(model, withoutGemv);
    const logits = decoder.forward([{ slot: decoder.openSlot(), ids: [2, 4, 6] }]);
    assert.ok(maxAbsDiff(logits, referenceLogits(model, [2, 4, 6])) < tolerance);
  });

  it('reuses closed slots\' cache arrays without their old contents mattering', () => {
    const decoder = new NativeDecoder(model, kernels);
    const [a, b] = [decoder.openSlot(), decoder.openSlot()];
    decoder.forward([{ slot: a, ids: [7, 7, 7, 7, 7, 7, 7, 7, 7, 7] }, { slot: b, ids: [3, 3, 3, 3, 3, 3] }]);
    decoder.closeSlot(a);
    decoder.closeSlot(b);
    const [c, d] = [decoder.openSlot(), decoder.openSlot()];
    assert.equal(decoder.openSlots, 2);
    assert.throws(() => decoder.forward([{ slot: a, ids: [1] }]), /slot 0 is not open/);
    const logits = decoder.forward([{ slot: d, ids: [4, 5] }, { slot: c, ids: [6] }]);
    assert.ok(maxAbsDiff(logits.subarray(0, config.vocabSize), referenceLogits(model, [4, 5])) < tolerance);
    assert.ok(maxAbsDiff(logits.subarray(config.vocabSize), referenceLogits(model, [6])) < tolerance);
  });

  it('reads the weights again after the model\'s variables were reassigned', () => {
    const copy = new GPT(config, { seed: 5 });
    const logitsOf = (decoder: NativeDecoder): Float32Array => decoder.forward([{ slot: decoder.openSlot(), ids: [1, 2] }]);
    const first = nativeDecoderFor(copy, kernels);
    assert.equal(nativeDecoderFor(copy, kernels), first, 'one decoder per model');
    const before = logitsOf(first);
    for (const p of copy.parameters()) p.variable.assign(tf.randomNormal(p.shape, 0, 0.3, 'float32', 9));
    const second = nativeDecoderFor(copy, kernels);
    assert.notEqual(second, first);
    const after = logitsOf(second);
    assert.ok(maxAbsDiff(before, after) > 1e-3);
    assert.ok(maxAbsDiff(after, referenceLogits(copy, [1, 2])) < tolerance);
    copy.dispose();
  });
});
