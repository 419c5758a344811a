/**
 * --device webgpu against the wasm path, on small shapes. CI machines have no GPU: these tests run on
 * SwiftShader (webgpu-env.ts). A machine where no adapter is found fails them: they never skip.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { fasterOfWebGpuAndCpu, initBackend } from '../../src/backend/index.js';
import { allowFallbackSwitch, importOptional, probeWebGpu, rejectedWebGpuPrograms } from '../../src/backend/webgpu.js';
import { UserError } from '../../src/common/errors.js';
import { GPT, type KVCache } from '../../src/model/gpt.js';
import { weightedCrossEntropy } from '../../src/model/loss.js';
import type { Batch } from '../../src/train/data.js';
import { AdamW } from '../../src/train/optimizer.js';
import { TrainStep } from '../../src/train/step.js';
import { fixturesDir } from '../helpers.js';
import { useSwiftShaderUnlessAGpuIsSet } from './webgpu-env.js';

useSwiftShaderUnlessAGpuIsSet();

const config = { vocabSize: 128, dModel: 32, nLayers: 2, nHeads: 4, dFf: 64, maxSeqLen: 16, dropout: 0.1 };
const rows = 2, T = 16;
const text = fs.readFileSync(path.join(fixturesDir, 'backend', 'python-faq-head.qa.txt')).map((b) => Math.min(b, 127));

/** Step s: consecutive byte windows of a real Q&A file, next-byte targets. */
function batchAt(s: number): Batch {
  const x = new Int32Array(rows * T), y = new Int32Array(rows * T);
  for (let r = 0; r < rows; r++) {
    const start = ((s * rows + r) * T) % (text.length - T - 1);
    for (let t = 0; t < T; t++) [x[r * T + t], y[r * T + t]] = [text[start + t]!, text[start + t + 1]!];
  }
  return { rows, T, x, y, weights: new Float32Array(rows * T).fill(1), targets: rows * T };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** Logits and every parameter's gradient of one forward and backward pass (dropout on, seeded). */
async function forwardAndGradients(): Promise<{ logits: Float32Array; grads: Map<string, Float32Array> }> {
  const model = new GPT(config, { seed: 5 });
  const b = batchAt(0);
  const x = tf.tensor2d(b.x, [rows, T], 'int32'), y = tf.tensor2d(b.y, [rows, T], 'int32'), w = tf.ones([rows, T]) as tf.Tensor2D;
  const logits = model.forward(x);
  const { grads } = tf.variableGrads(() => weightedCrossEntropy(model.forward(x, { training: true, dropoutSeed: 'g' }), y, w, 1 / (rows * T)));
  const out = { logits: (await logits.data()) as Float32Array, grads: new Map<string, Float32Array>() };
  for (const p of model.parameters()) out.grads.set(p.name, (await grads[p.variable.name]!.data()) as Float32Array);
  tf.dispose([logits, x, y, w, ...Object.values(grads)]);
  model.dispose();
  return out;
}

async function trainLosses(steps: number): Promise<number[]> {
  const model = new GPT(config, { seed: 7 });
  const optimizer = new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 });
  const step = new TrainStep(model, optimizer, 1.0);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) losses.push((await step.run([batchAt(s)], 3e-3, `w:${s}`)).loss);
  optimizer.dispose();
  model.dispose();
  return losses;
}

/** Greedy KV-cached decode of `n` tokens after a prompt, as src/generate does it (one position per forward). */
async function greedyDecode(n: number): Promise<number[]> {
  const model = new GPT({ ...config, dropout: 0 }, { seed: 11 });
  const cache: KVCache = model.createCache(1);
  let ids = [3, 17, 42];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = model.forward(tf.tensor2d(ids, [1, ids.length], 'int32'), { cache });
    const last = tf.tidy(() => logits.slice([0, ids.length - 1, 0], [1, 1, config.vocabSize]).flatten().argMax());
    const next = (await last.data())[0]!;
    tf.dispose([logits, last]);
    out.push(next);
    ids = [next];
  }
  cache.dispose();
  model.dispose();
  return out;
}

describe('--device webgpu (on SwiftShader here)', () => {
  it('starts on the adapter Dawn finds and names it; a fallback adapter is refused in one line unless allowed', async () => {
    const info = await initBackend('webgpu');
    assert.equal(tf.getBackend(), 'webgpu');
    assert.match(info.line, /^backend: webgpu on .+ \(requested with --device webgpu\)$/);
    process.env[allowFallbackSwitch] = '0';
    try {
      await assert.rejects(initBackend('webgpu'), (e: unknown) =>
        e instanceof UserError && !e.message.includes('\n') &&
        /^--device webgpu: only a fallback adapter, .*swiftshader.*--device auto uses the CPU path/.test(e.message));
      const auto = await initBackend('auto');
      assert.notEqual(auto.backend, 'webgpu');
      assert.match(auto.line, /webgpu: only a fallback adapter/);
    } finally {
      process.env[allowFallbackSwitch] = '1';
    }
  });

  it('a missing optional package is one clause naming it and how to install it', async () => {
    const pkg = 'gptmed-no-such-package';
    assert.deepEqual(await importOptional(pkg), { why: `${pkg} is not installed (an optional dependency: npm install ${pkg})` });
  });

  it('auto with a hardware adapter: measures both paths, starts the faster and gives both figures', async () => {
    // SwiftShader stands in for a hardware adapter here; the measurements are made up, the switching is real.
    const probe = await probeWebGpu();
    assert.ok(probe.ok, probe.ok ? '' : probe.why);
    const cpu = { backend: 'wasm', label: 'wasm', why: 'auto: test' };
    const measured: string[] = [];
    const fakeSpeed = (gpu: number) => async (backend: string): Promise<number> => {
      measured.push(`${backend}:${tf.getBackend()}`);
      return backend === 'webgpu' ? gpu : 2000;
    };
    const faster = await fasterOfWebGpuAndCpu(cpu, probe.adapter, fakeSpeed(5000));
    assert.deepEqual(measured, ['wasm:wasm', 'webgpu:webgpu']);
    assert.equal(tf.getBackend(), 'webgpu');
    assert.match(faster.line, /^backend: webgpu on .* \(auto: a hardware adapter, measured 5,000 tokens\/s on webgpu vs 2,000 tokens\/s on wasm for this model\)$/);
    const slower = await fasterOfWebGpuAndCpu(cpu, probe.adapter, fakeSpeed(1000));
    assert.equal(tf.getBackend(), 'wasm');
    assert.match(slower.line, /^backend: wasm \(auto: test; webgpu: .* is slower for this model \(measured 1,000 tokens\/s on webgpu vs 2,000/);
  });

  it('forward pass and gradients of a micro model match wasm', async () => {
    await initBackend('wasm');
    const wasm = await forwardAndGradients();
    await initBackend('webgpu');
    const gpu = await forwardAndGradients();
    assert.ok(maxAbsDiff(gpu.logits, wasm.logits) < 1e-4, `logits differ by ${maxAbsDiff(gpu.logits, wasm.logits)}`);
    for (const [name, g] of wasm.grads) {
      const scale = Math.max(1e-3, ...Array.from(g, Math.abs));
      const diff = maxAbsDiff(gpu.grads.get(name)!, g);
      assert.ok(diff / scale < 1e-3, `${name}: gradients differ by ${diff} (largest ${scale})`);
    }
  });

  it('20 training steps (dropout, AdamW, clipping) match wasm within 1e-3 at every step, and repeat exactly', async () => {
    await initBackend('wasm');
    const wasm = await trainLosses(20);
    await initBackend('webgpu');
    const gpu = await trainLosses(20);
    gpu.forEach((loss, s) => assert.ok(Math.abs(loss - wasm[s]!) < 1e-3, `step ${s + 1}: webgpu ${loss}, wasm ${wasm[s]}`));
    assert.ok(gpu[19]! < gpu[0]! - 0.3, `the loss falls: ${gpu[0]} -> ${gpu[19]}`);
    // No float atomics (webgpu-kernels.ts): the same run twice gives the same bits.
    assert.deepEqual(await trainLosses(6), gpu.slice(0, 6));
  });

  it('a training step uploads its batch, not activation-sized data built in JavaScript (dropout masks, ones)', async () => {
    await initBackend('webgpu');
    const model = new GPT(config, { seed: 7 });
    const step = new TrainStep(model, new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 }), 1.0);
    await step.run([batchAt(0)], 3e-3, 'u:0');
    // tfjs-backend-webgpu moves a tensor's values from JavaScript to the GPU in uploadToGPU: count the bytes.
    const backend = tf.backend() as unknown as { uploadToGPU(dataId: object): void; tensorMap: { get(id: object): { values?: ArrayLike<number> | null; resource?: unknown; shape: number[] } } };
    const upload = backend.uploadToGPU;
    const uploads: Array<{ shape: number[]; bytes: number }> = [];
    backend.uploadToGPU = function (dataId) {
      const data = backend.tensorMap.get(dataId);
      if (data.values && !data.resource) uploads.push({ shape: data.shape, bytes: 4 * data.values.length });
      upload.call(this, dataId);
    };
    try {
      await step.run([batchAt(1)], 3e-3, 'u:1');
    } finally {
      backend.uploadToGPU = upload;
      model.dispose();
    }
    const activation = 4 * rows * T * config.dModel;
    const large = uploads.filter((u) => u.bytes >= activation);
    assert.deepEqual(large, [], `uploads the size of an activation (${activation} bytes)`);
    assert.ok(uploads.some((u) => u.bytes === 4 * rows * T), 'the batch itself is uploaded (the check sees uploads)');
  });

  it('no program that sums with float atomics: a weight-gradient-shaped product skips tfjs\'s split-K program', async () => {
    await initBackend('webgpu');
    // x^T @ dy of a small model: a 32 x 96 output from K = 4096 rows, where tfjs 4.22 picks split-K (atomicAdd).
    const x = tf.randomNormal([4096, 32], 0, 1, 'float32', 1), dy = tf.randomNormal([4096, 96], 0, 1, 'float32', 2);
    const backend = tf.backend() as unknown as { runWebGPUProgram(program: { shaderKey: string }, ...rest: unknown[]): tf.TensorInfo };
    const run = backend.runWebGPUProgram;
    const programs: string[] = [];
    backend.runWebGPUProgram = function (program, ...rest) {
      programs.push(program.shaderKey);
      return run.call(this, program, ...rest);
    };
    try {
      const first = tf.matMul(x, dy, true, false);
      const again = tf.matMul(x, dy, true, false);
      assert.deepEqual(await again.data(), await first.data());
      tf.dispose([first, again]);
    } finally {
      backend.runWebGPUProgram = run;
      tf.dispose([x, dy]);
    }
    assert.ok(programs.length > 0 && !programs.some((key) => key.startsWith('matMulSplitK')), programs.join(', '));
  });

  it('KV-cached greedy decode gives the same tokens as wasm', async () => {
    await initBackend('wasm');
    const wasm = await greedyDecode(10);
    await initBackend('webgpu');
    assert.deepEqual(await greedyDecode(10), wasm);
  });

  it('the device rejected no program on the way (a rejected one computes garbage silently)', () => {
    assert.equal(rejectedWebGpuPrograms(), 0);
  });

  it('work the device rejects makes the next read a one-line error, not garbage', async () => {
    await initBackend('webgpu');
    const x = tf.tensor1d([1, 2, 3]);
    const backend = tf.backend() as unknown as { runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: string): tf.TensorInfo };
    const program = {
      shaderKey: 'gptmedTestInvalid', outputShape: [3], variableNames: ['x'], workgroupSize: [64, 1, 1], dispatchLayout: { x: [0] },
      dispatch: [1, 1, 1], getUserCode: () => 'fn main(index : i32) { this is not WGSL }',
    };
    const out = backend.runWebGPUProgram(program, [x], 'float32');
    const y = tf.engine().makeTensorFromTensorInfo(out);
    await assert.rejects(y.data(), (e: unknown) => e instanceof UserError && /^webgpu: the GPU rejected work \(.+\), so results are invalid/.test(e.message) && !e.message.includes('\n'));
    // Reported once: later work reads normally (what the rejected work touched stays invalid).
    const later = tf.add(tf.tensor1d([4, 5]), 1);
    assert.deepEqual(Array.from(await later.data()), [5, 6]);
    tf.dispose([x, y, later]);
  });
});
