/**
 * The native kernels (src/backend/fast-kernels.ts) against tfjs's reference cpu backend on random
 * inputs, forward and gradients, at sizes that take the multi-threaded paths; and whole training
 * runs with and without them. The kernels' call counters show which path ran: each fast kernel
 * runs during a real training step, and inputs it does not take are counted as fallbacks and give
 * the stock result. CI installs libopenblas0-pthread and a C++ compiler, so the fast path must be
 * enabled here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as fs from 'node:fs';
import seedrandom from 'seedrandom';
import {
  broadcastPlan, fastKernelCalls, registerFastKernels, resetFastKernelCalls, softmaxGradKernel, tfjsVersionWrittenFor, wasmInternalsProblem,
} from '../../src/backend/fast-kernels.js';
import { applyDropout, dropout, dropoutAttrs, dropoutKernel } from '../../src/backend/dropout.js';
import { registerMissingWasmKernels } from '../../src/backend/missing-kernels.js';
import { causalAttentionWeights, gelu, layerNorm } from '../../src/model/fused.js';
import { GPT } from '../../src/model/gpt.js';
import { hasFusedCrossEntropy, weightedCrossEntropy } from '../../src/model/loss.js';
import { AdamW } from '../../src/train/optimizer.js';
import { TrainStep } from '../../src/train/step.js';
import { repoRoot } from '../helpers.js';

await tf.setBackend('wasm');
const status = await registerFastKernels('wasm');

const rng = seedrandom('gptmed-fast-kernels');
function randomArray(n: number, lo = -2, hi = 2): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng());
}
function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Runs `fn` on the fast wasm kernels and on tfjs's cpu backend; returns both results' values. */
async function onBoth(fn: () => tf.Tensor | tf.Tensor[]): Promise<{ fast: Float32Array[]; reference: Float32Array[] }> {
  const run = (): Float32Array[] => {
    const out = tf.tidy(fn);
    const list = Array.isArray(out) ? out : [out];
    const values = list.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose(list);
    return values;
  };
  await tf.setBackend('wasm');
  const fast = run();
  await tf.setBackend('cpu');
  const reference = run();
  await tf.setBackend('wasm');
  return { fast, reference };
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string, rtol = 1e-4, atol = 1e-5): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(e)) {
      assert.ok(Number.isNaN(a), `${what}[${i}]: ${a}, expected NaN`);
      continue;
    }
    assert.ok(Math.abs(a - e) <= atol + rtol * Math.abs(e), `${what}[${i}]: ${a}, expected ${e}`);
  }
}

async function check(what: string, fn: () => tf.Tensor | tf.Tensor[], rtol?: number, atol?: number): Promise<void> {
  const { fast, reference } = await onBoth(fn);
  fast.forEach((values, i) => assertClose(values, reference[i]!, `${what} #${i}`, rtol, atol));
}

/** Runs `body` with the call counters from zero; asserts each of `kernels` took its fast path and never fell back. */
async function ranFast(kernels: string[], body: () => Promise<void>): Promise<void> {
  resetFastKernelCalls();
  await body();
  const calls = fastKernelCalls();
  for (const name of kernels) {
    assert.ok((calls[name]?.fast ?? 0) > 0, `${name} took the fast path (${JSON.stringify(calls[name])})`);
    assert.equal(calls[name]?.fallback, 0, `${name} never fell back`);
  }
}

test('the fast path is enabled on the wasm backend, and declined without a notice elsewhere', async () => {
  assert.equal(status.enabled, true, status.notice);
  assert.deepEqual(await registerFastKernels('cpu'), { enabled: false });
});

test('matrix products in every transposed, batched and broadcast form, with their gradients', async () => {
  const cases: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [
    { a: [67, 45], b: [45, 53], ta: false, tb: false },
    { a: [45, 67], b: [45, 53], ta: true, tb: false },
    { a: [67, 45], b: [53, 45], ta: false, tb: true },
    { a: [45, 67], b: [53, 45], ta: true, tb: true },
    { a: [2, 3, 40, 16], b: [2, 3, 40, 16], ta: false, tb: true },
    { a: [2, 3, 40, 40], b: [2, 3, 40, 16], ta: true, tb: false },
    { a: [2, 3, 40, 16], b: [16, 24], ta: false, tb: false },
    { a: [40, 16], b: [4, 40, 24], ta: true, tb: false },
    { a: [512, 96], b: [96, 320], ta: false, tb: false },
  ];
  for (const { a, b, ta, tb } of cases) {
    const av = randomArray(sizeOf(a)), bv = randomArray(sizeOf(b));
    await ranFast(['BatchMatMul'], () => check(`matMul ${a} x ${b} ${ta} ${tb}`, () => {
      const x = tf.tensor(av, a), y = tf.tensor(bv, b);
      const product = tf.matMul(x, y, ta, tb);
      if (a.length !== b.length) return [product]; // tfjs's BatchMatMul gradient does not un-broadcast
      const weight = tf.tensor(randomArrayFrom(product.size), product.shape);
      const grads = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q, ta, tb), weight)))([x, y]);
      return [product, ...grads];
    }, 1e-4, 1e-4)); // sums of up to 512 products of O(1) terms, in BLAS's order
  }
});

/** Deterministic weights for a given size, the same on both backends. */
function randomArrayFrom(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
}

test('fused matMul with bias, and its gradients', async () => {
  const av = randomArray(300 * 64), bv = randomArray(96 * 64), biasV = randomArray(96);
  await ranFast(['_FusedMatMul'], () => check('fused matMul', () => {
    const a = tf.tensor2d(av, [300, 64]), b = tf.tensor2d(bv, [96, 64]), bias = tf.tensor1d(biasV);
    const weight = tf.tensor2d(randomArrayFrom(300 * 96), [300, 96]);
    const out = tf.fused.matMul({ a, b, bias, transposeB: true });
    const grads = tf.grads((p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) =>
      tf.sum(tf.mul(tf.fused.matMul({ a: p as tf.Tensor2D, b: q as tf.Tensor2D, bias: r, transposeB: true }), weight)))([a, b, bias]);
    return [out, ...grads];
  }));
});

test('softmax over the last axis (attention and vocabulary sizes), with a masked row, and its gradient', async () => {
  for (const shape of [[2, 4, 33, 33], [64, 8000]]) {
    const xv = randomArray(sizeOf(shape), -6, 6);
    xv.fill(-1e9, 1, shape.at(-1)!); // row 0 sees only its first position, as causal attention's first query
    await ranFast(['Softmax', softmaxGradKernel], () => check(`softmax ${shape}`, () => {
      const x = tf.tensor(xv, shape);
      const weight = tf.tensor(randomArrayFrom(x.size), shape);
      return [tf.softmax(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.softmax(t), weight)))(x)];
    }, 1e-4, 1e-6));
  }
});

test('softmax cross-entropy fused over a vocabulary of 8000, with uncounted positions, and its gradient', async () => {
  const [B, T, V] = [2, 48, 8000];
  // Its own generator: the shared one's draws for the tests below stay as they were.
  const own = seedrandom('gptmed-fused-cross-entropy');
  const logitsV = Float32Array.from({ length: B * T * V }, () => -8 + 16 * own());
  const targetsV = Int32Array.from({ length: B * T }, () => Math.floor(own() * V));
  const weightsV = Float32Array.from({ length: B * T }, (_, i) => (i % 5 === 0 ? 0 : 1));
  assert.ok(hasFusedCrossEntropy(), 'the fused kernels are registered on wasm');
  await check('cross-entropy', () => {
    const logits = tf.tensor3d(logitsV, [B, T, V]), y = tf.tensor2d(targetsV, [B, T], 'int32'), w = tf.tensor2d(weightsV, [B, T]);
    const scale = 1 / 77;
    return [weightedCrossEntropy(logits, y, w, scale), tf.grad((l: tf.Tensor) => weightedCrossEntropy(l as tf.Tensor3D, y, w, scale))(logits)];
  }, 1e-5, 1e-7);
});

/** Draws from a generator of the test's own, so the shared one's draws for the other tests stay as they were. */
function ownRandom(seed: string): (n: number, lo?: number, hi?: number) => Float32Array {
  const own = seedrandom(seed);
  return (n, lo = -2, hi = 2) => Float32Array.from({ length: n }, () => lo + (hi - lo) * own());
}

test('fused LayerNorm, GELU and causal attention weights match the stock formulas, with their gradients', async () => {
  const randomArray = ownRandom('gptmed-fused-chains');
  const [B, T, d] = [3, 40, 96];
  const xv = randomArray(B * T * d, -3, 3), gv = randomArray(d, 0.5, 1.5), bv = randomArray(d), wv = randomArrayFrom(B * T * d);
  await ranFast(['GptmedLayerNorm', 'GptmedLayerNormGrad', 'GptmedGelu', 'GptmedGeluGrad'], () => check('layerNorm, gelu', () => {
    const x = tf.tensor3d(xv, [B, T, d]), gamma = tf.tensor1d(gv), beta = tf.tensor1d(bv), w = tf.tensor3d(wv, [B, T, d]);
    const chain = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.sum(tf.mul(gelu(layerNorm(a as tf.Tensor3D, [g, b])), w));
    return [layerNorm(x, [gamma, beta]), gelu(x), ...tf.grads(chain)([x, gamma, beta])];
  }, 1e-4, 1e-5));
  // Training (past 0) and decoding with a cache (past 5: 3 new queries over 8 keys).
  for (const [queries, past] of [[33, 0], [3, 5]] as const) {
    const shape = [2, 4, queries, past + queries];
    const sv = randomArray(sizeOf(shape), -6, 6), weight = randomArrayFrom(sizeOf(shape));
    await ranFast(['GptmedCausalSoftmax', 'GptmedCausalSoftmaxGrad'], () => check(`causal softmax past ${past}`, () => {
      const s = tf.tensor4d(sv, shape as [number, number, number, number]), w = tf.tensor(weight, shape);
      const f = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(causalAttentionWeights(t as tf.Tensor4D, 0.125, past), w));
      return [causalAttentionWeights(s, 0.125, past), tf.grad(f)(s)];
    }, 1e-4, 1e-6));
  }
});

test("dropout on all cores gives src/backend/dropout.ts's reference mask and values bit for bit", async () => {
  // One row of 100,000 (split between threads inside the row), and attention weights' shape.
  const randomArray = ownRandom('gptmed-dropout');
  for (const shape of [[1, 100_000], [2, 4, 33, 33]]) {
    const xv = randomArray(sizeOf(shape)), rows = shape[0]!;
    const keys = Int32Array.from({ length: 2 * rows }, (_, i) => (i * 0x9e3779b9) | 0);
    await ranFast([dropoutKernel], async () => {
      const y = tf.tidy(() => dropout(tf.tensor(xv, shape), keys, 0.1).dataSync() as Float32Array);
      assert.deepEqual(y, applyDropout(xv, keys, dropoutAttrs(0.1)));
    });
  }
});

test('element-wise functions, including exp far below and above zero', async () => {
  const n = 300_000;
  const wide = randomArray(n, -100, 88);
  wide[0] = -1e9;
  const positive = randomArray(n, 1e-3, 50);
  // tfjs's cpu erf is Abramowitz & Stegun 7.1.26 (absolute error up to 1.5e-7); the addon's is libm's.
  const ops: Array<[string, (t: tf.Tensor) => tf.Tensor, Float32Array]> = [
    ['exp', tf.exp, wide], ['log', tf.log, positive], ['neg', tf.neg, wide], ['sqrt', tf.sqrt, positive],
    ['rsqrt', tf.rsqrt, positive], ['square', tf.square, wide], ['erf', tf.erf, randomArray(n, -4, 4)],
    ['tanh', tf.tanh, randomArray(n, -6, 6)],
  ];
  for (const [name, op, values] of ops) {
    const kernel = name[0]!.toUpperCase() + name.slice(1); // exp -> Exp
    await ranFast([kernel], () => check(name, () => op(tf.tensor1d(values)), 1e-5, name === 'erf' ? 2e-7 : 1e-30));
  }
});

test('binary operations under every broadcast the model uses, and some it does not', async () => {
  const pairs: Array<[number[], number[]]> = [
    [[64, 50, 96], [64, 50, 96]], [[64, 50, 96], [96]], [[64, 50, 96], [64, 50, 1]], [[4, 1, 6], [1, 5, 1]],
    [[64, 50, 96], []], [[], [64, 50, 96]], [[2, 4, 50, 50], [50, 50]], [[2, 3, 4, 5, 6], [3, 1, 5, 1]],
  ];
  for (const [sa, sb] of pairs) {
    const av = randomArray(sizeOf(sa)), bv = randomArray(sizeOf(sb), 0.5, 2);
    for (const op of [tf.add, tf.sub, tf.mul, tf.div]) {
      await check(`${op.name} ${sa} ${sb}`, () => {
        const a = tf.tensor(av, sa), b = tf.tensor(bv, sb);
        return [op(a, b), ...tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(op(p, q)))([a, b])];
      }, 1e-5, 2e-4); // gradients of a broadcast operand are sums of up to 3,200 terms, in another order

    }
  }
});

test('broadcast plans merge contiguous dimensions and give up beyond four', () => {
  const plan = broadcastPlan([8, 4, 256, 256], [8, 4, 256, 256], [256, 256]);
  assert.deepEqual(plan && [...plan.shape], [1, 1, 32, 65536]);
  assert.deepEqual(plan && [...plan.stridesB], [0, 0, 0, 1]);
  assert.equal(broadcastPlan([2, 3, 4, 5, 6], [2, 3, 4, 5, 6], [2, 1, 4, 1, 6]), null);
});

test('sums, maxima and means over leading, trailing and middle axes', async () => {
  const shape = [48, 30, 70];
  const xv = randomArray(sizeOf(shape));
  for (const axis of [-1, 2, 0, [0, 1], [1, 2], 1]) {
    for (const keepDims of [false, true]) {
      const check3 = (): Promise<void> => check(`reductions ${axis} ${keepDims}`, () => {
        const x = tf.tensor(xv, shape);
        return [tf.sum(x, axis, keepDims), tf.max(x, axis, keepDims), tf.mean(x, axis, keepDims)];
      }, 1e-5, 1e-4);
      // A middle axis alone is not a leading or trailing run: the stock kernels take it.
      await (axis === 1 ? check3() : ranFast(['Sum', 'Max', 'Mean'], check3));
    }
  }
});

test('transposes, splits, concatenations and copies', async () => {
  const shape = [4, 40, 6, 16];
  const xv = randomArray(sizeOf(shape));
  await check('data movement', () => {
    const x = tf.tensor(xv, shape);
    const [q, k, v] = tf.split(x.reshape([4, 40, 96]), 3, 2);
    const uneven = tf.split(x.reshape([160, 96]), [10, 50, 36], 1);
    return [
      tf.transpose(x, [0, 2, 1, 3]), tf.transpose(x, [2, 0, 1, 3]), tf.transpose(x, [1, 0, 3, 2]),
      q!, k!, v!, ...uneven, tf.concat(uneven, 1), tf.concat([q!, v!], -1), tf.concat([q!, k!], 0), tf.clone(x),
    ];
  }, 0, 0);
});

test('a training step of a small GPT (forward, backward, AdamW) runs every fast kernel it uses on the fast path', async () => {
  registerMissingWasmKernels(); // the embeddings' gradient, as initBackend does
  const model = new GPT({ vocabSize: 64, dModel: 32, nLayers: 1, nHeads: 4, dFf: 64, maxSeqLen: 16, dropout: 0 }, { seed: 3 });
  const step = new TrainStep(model, new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 }), 1.0);
  const [rows, T] = [2, 16];
  const x = Int32Array.from({ length: rows * T }, (_, i) => (i * 7) % 64), y = Int32Array.from(x, (t) => (t + 1) % 64);
  resetFastKernelCalls();
  const { loss } = await step.run([{ rows, T, x, y, weights: new Float32Array(rows * T).fill(1), targets: rows * T }], 1e-3, 'fast-path');
  assert.ok(Number.isFinite(loss));
  // Used only outside this step, and checked by the tests above: the element-wise kernels and softmax that the
  // fused LayerNorm, GELU, attention weights, loss and AdamW replace inside it (other callers and models still
  // use them), and dropout (this model has none).
  const notInStep = new Set(['Exp', 'Log', 'Neg', 'Rsqrt', 'Square', 'Erf', 'Tanh', 'Sub', 'RealDiv', 'Max', 'Mean', 'Softmax', softmaxGradKernel, dropoutKernel]);
  const calls = Object.entries(fastKernelCalls());
  assert.ok(calls.length >= 25, `registered kernels: ${calls.map(([name]) => name).join(', ')}`);
  for (const [name, counts] of calls.filter(([name]) => !notInStep.has(name))) {
    assert.ok(counts.fast > 0, `${name} took the fast path in a training step (${JSON.stringify(counts)})`);
  }
  model.dispose();
});

test('inputs a fast kernel does not take are counted as fallbacks and give the stock result', async () => {
  const cases: Array<[string, () => tf.Tensor]> = [
    ['Add', () => tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32'))], // another dtype
    ['Add', () => tf.add(tf.tensor(randomArrayFrom(720), [2, 3, 4, 5, 6]), tf.tensor(randomArrayFrom(48), [2, 1, 4, 1, 6]))], // 5 broadcast dims
    ['Sum', () => tf.sum(tf.tensor(randomArrayFrom(60), [3, 4, 5]), 1)], // a middle axis
    ['Transpose', () => tf.transpose(tf.tensor(randomArrayFrom(24), [2, 3, 4]), [2, 0, 1])], // moves the last axis
  ];
  for (const [kernel, fn] of cases) {
    resetFastKernelCalls();
    const { fast, reference } = await onBoth(fn);
    assert.deepEqual(fastKernelCalls()[kernel], { fast: 0, fallback: 1 }, kernel);
    assertClose(fast[0]!, reference[0]!, `${kernel} fallback`, 1e-6, 1e-7); // wasm and cpu sum in other orders
  }
});

test("Softmax's gradient is tfjs's own on other backends (gradients are global in tfjs)", async () => {
  await tf.setBackend('cpu');
  resetFastKernelCalls();
  const x = tf.tensor2d(randomArrayFrom(40), [4, 10]), w = tf.tensor2d(randomArrayFrom(40).reverse(), [4, 10]);
  const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.softmax(t), w)))(x);
  // tfjs's softmax gradient, step for step: y * dy - sum(y * dy) * y over the last axis.
  const y = tf.softmax(x), dyTimesY = tf.mul(w, y);
  const stock = tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, -1, true), y));
  assert.deepEqual(dx.dataSync(), stock.dataSync());
  assert.deepEqual(fastKernelCalls()[softmaxGradKernel], { fast: 0, fallback: 0 });
  tf.dispose([x, w, dx, y, dyTimesY, stock]);
  await tf.setBackend('wasm');
});

test('the fast path is turned off, with a reason, for a tfjs other than the one it was written for', () => {
  const backend = tf.findBackend('wasm');
  assert.equal(wasmInternalsProblem({ core: tf.version_core, wasm: tfjsVersionWrittenFor }, backend), null);
  assert.match(wasmInternalsProblem({ core: tfjsVersionWrittenFor, wasm: '4.23.0' }, backend) ?? '', /written for tfjs 4\.22\.0.*tfjs-backend-wasm 4\.23\.0/);
  assert.match(wasmInternalsProblem({ core: tfjsVersionWrittenFor, wasm: tfjsVersionWrittenFor }, {}) ?? '', /lacks makeOutput/);
  // package.json pins tfjs to exactly that release.
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.equal(pkg.dependencies['@tensorflow/tfjs'], tfjsVersionWrittenFor);
  assert.equal(pkg.dependencies['@tensorflow/tfjs-backend-wasm'], tfjsVersionWrittenFor);
});

test('50 training steps: the loss with the fast kernels is within 1e-3 of the stock wasm kernels', () => {
  const run = (env: NodeJS.ProcessEnv): { loss: number; backendLine: string } => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join('test', 'backend', 'train-steps.ts'), '50'], {
      cwd: repoRoot, encoding: 'utf8', env: { ...process.env, ...env },
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { loss: number; backendLine: string };
  };
  const fast = run({ GPTMED_FAST_KERNELS: '1' });
  const stock = run({ GPTMED_FAST_KERNELS: '0' });
  assert.match(fast.backendLine, /with native BLAS kernels/);
  assert.match(stock.backendLine, /fast CPU kernels off \(GPTMED_FAST_KERNELS=0\)/);
  assert.ok(stock.loss < 4.5, `training should learn the bytes' statistics (loss ${stock.loss}, ln 256 = 5.55)`);
  assert.ok(Math.abs(fast.loss - stock.loss) <= 1e-3, `fast ${fast.loss} vs stock ${stock.loss}`);
});
