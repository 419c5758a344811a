/**
 * gptmed-train --init-from CHECKPOINT --lora-rank R: adapters on frozen weights. Fresh adapters are the base
 * model exactly; merged weights and base + adapters give the same logits; the base checkpoint is untouched
 * and the run keeps only adapters; the run resumes exactly; generate and export apply the adapters; bad
 * input is one line with nothing written.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { sha256File } from '../../src/common/hash.js';
import { toGpt2 } from '../../src/export/gpt2-layout.js';
import { readSafetensors, toFloat32 } from '../../src/export/safetensors.js';
import { adapterSpecs, GPT, mergeAdapters, readTensors, type CheckpointManifest, type LoraConfig } from '../../src/model/index.js';
import { startServer } from '../../src/serve/server.js';
import { runCli, tempDir } from '../helpers.js';
import { assertRefused, lossCurve, manifestOf, noShape, pointer, quizFile, runFlags, train, trainedSource, type Flags, type Shards } from './run-helpers.js';

let work: string;
let shards: Shards;
/** The base run (the quiz learned for 40 steps) and its best step directory. */
let base: string;
let baseBest: string;
let baseSha: string;

const constantLr: Flags = { 'learning-rate': 5e-3, 'min-lr': 5e-3, 'warmup-steps': 0 };

function loraFlags(run: string, extra: Flags = {}): string[] {
  return runFlags(shards, run, { ...noShape, 'init-from': base, 'lora-rank': 4, ...constantLr, ...extra });
}


/** Logits of `model` on a fixed batch, as plain numbers. */
function logitsOf(model: GPT): Float32Array {
  const idx = tf.tensor2d([[1, 5, 9, 30, 7, 2, 11, 40], [3, 3, 8, 100, 12, 6, 1, 0]], [2, 8], 'int32');
  const out = model.forward(idx);
  const data = out.dataSync() as Float32Array;
  idx.dispose();
  out.dispose();
  return data;
}

const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe('gptmed-train --lora-rank', () => {
  let run: string;
  let runLatest: string;

  before(async () => {
    work = tempDir();
    ({ shards, run: base, best: baseBest } = trainedSource(work, 'base'));
    baseSha = sha256File(path.join(baseBest, 'weights.bin'));
    run = path.join(work, 'lora');
    const l = train(loraFlags(run, { 'max-steps': 8, 'save-interval': 4, 'learning-rate': 3e-2, 'min-lr': 3e-2 }));
    assert.equal(l.status, 0, l.stderr);
    assert.match(l.stderr, /LoRA: rank 4, alpha 16, dropout 0 on attn\.qkv,attn\.proj,mlp\.fc,mlp\.proj: [\d,]+ trainable parameters \([\d.]+% of [\d,]+\); adapters/);
    runLatest = path.join(run, pointer(run, 'latest'));
    await initBackend('wasm');
  });

  it('fresh adapters (B = 0) are the base model exactly: the same logits, the same first loss as full fine-tuning', () => {
    const m = manifestOf(baseBest);
    const weights = readTensors(baseBest, m.weights);
    const plain = new GPT(m.modelConfig, { weights });
    const lora: LoraConfig = { rank: 4, alpha: 16, dropout: 0, targets: ['attn.qkv', 'attn.proj', 'mlp.fc', 'mlp.proj'] };
    const adapted = new GPT(m.modelConfig, { weights, seed: 7, lora: { config: lora } });
    assert.deepEqual(logitsOf(adapted), logitsOf(plain));
    assert.equal(adapted.trainableParameters().length, adapterSpecs(m.modelConfig, lora).length);
    plain.dispose();
    adapted.dispose();
    // Same seed, same batch, same dropout masks: step 1's loss (taken before any update) is the base's.
    const full = path.join(work, 'full-1');
    assert.equal(train(runFlags(shards, full, { ...noShape, 'init-from': base, ...constantLr, 'max-steps': 1 })).status, 0);
    assert.equal(lossCurve(run).get(1), lossCurve(full).get(1));
  });

  it('merged weights (W + alpha/r A B) and base + adapters give the same logits (1e-5)', () => {
    const m = manifestOf(runLatest);
    const lora = m.lora!;
    const baseWeights = readTensors(baseBest, manifestOf(baseBest).weights);
    const adapters = readTensors(runLatest, m.weights);
    assert.ok([...adapters.entries()].some(([n, v]) => n.endsWith('lora_b') && v.some((x) => x !== 0)), 'B has trained');
    const withAdapters = new GPT(m.modelConfig, { weights: baseWeights, lora: { config: lora, weights: adapters } });
    const merged = new GPT(m.modelConfig, { weights: mergeAdapters(baseWeights, adapters, m.modelConfig, lora) });
    const plain = new GPT(m.modelConfig, { weights: baseWeights });
    const a = logitsOf(withAdapters);
    const diff = maxDiff(a, logitsOf(merged));
    console.log(`merged vs base + adapters: max |logit difference| ${diff.toExponential(2)}; base vs adapted ${maxDiff(a, logitsOf(plain)).toExponential(2)}`);
    assert.ok(diff < 1e-5, `logits differ by ${diff}`);
    assert.ok(maxDiff(a, logitsOf(plain)) > 1e-3, 'the adapters change the model');
    for (const g of [withAdapters, merged, plain]) g.dispose();
  });

  it("the adapters' dropout masks depend on (seed, row in the step): a batch split in two gets the same masks", () => {
    const m = manifestOf(runLatest);
    const weights = readTensors(baseBest, manifestOf(baseBest).weights);
    const model = new GPT(m.modelConfig, { weights, lora: { config: { ...m.lora!, dropout: 0.5 }, weights: readTensors(runLatest, m.weights) } });
    const idx = tf.tensor2d([[1, 5, 9, 30, 7, 2, 11, 40], [3, 3, 8, 100, 12, 6, 1, 0]], [2, 8], 'int32');
    const run = (x: tf.Tensor2D, opts: Parameters<GPT['forward']>[1]): Float32Array => tf.tidy(() => model.forward(x, opts).dataSync() as Float32Array);
    const whole = run(idx, { training: true, dropoutSeed: 's' });
    const [a, b] = tf.split(idx, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
    const halves = new Float32Array([...run(a, { training: true, dropoutSeed: 's' }), ...run(b, { training: true, dropoutSeed: 's', dropoutRowOffset: 1 })]);
    assert.ok(maxDiff(whole, halves) < 1e-5, `split batch differs by ${maxDiff(whole, halves)}`);
    const plain = new GPT(m.modelConfig, { weights, lora: { config: { ...m.lora!, dropout: 0 }, weights: readTensors(runLatest, m.weights) } });
    const noLoraDropout = tf.tidy(() => plain.forward(idx, { training: true, dropoutSeed: 's' }).dataSync() as Float32Array);
    assert.ok(maxDiff(whole, noLoraDropout) > 1e-3, "the adapters' dropout masks something");
    for (const t of [idx, a, b]) t.dispose();
    model.dispose();
    plain.dispose();
  });

  it("keeps the base untouched and only adapters in the run: weights.bin byte-identical, the manifest's lora record", () => {
    assert.equal(sha256File(path.join(baseBest, 'weights.bin')), baseSha);
    const m = manifestOf(runLatest);
    const baseManifest = manifestOf(baseBest);
    assert.deepEqual(m.lora, { rank: 4, alpha: 16, dropout: 0, targets: ['attn.qkv', 'attn.proj', 'mlp.fc', 'mlp.proj'], base: { path: baseBest, step: baseManifest.step, sha256: baseSha } });
    assert.deepEqual(fs.readdirSync(runLatest).sort(), ['manifest.json', 'optimizer.bin', 'weights.bin']);
    assert.deepEqual(m.weights.tensors.map((t) => t.name), adapterSpecs(m.modelConfig, m.lora!).map((s) => s.name));
    assert.ok(m.optimizer!.tensors.every((t) => /^[mv]\.h\.\d+\..*\.lora_[ab]$/.test(t.name)), 'optimizer state for adapters only');
    assert.equal(m.parameterCount, baseManifest.parameterCount);
    const adapterBytes = fs.statSync(path.join(runLatest, 'weights.bin')).size;
    const baseBytes = fs.statSync(path.join(baseBest, 'weights.bin')).size;
    assert.ok(adapterBytes < baseBytes / 4, `adapters ${adapterBytes} bytes, base ${baseBytes}`);
  });

  it('resumes exactly: 4 steps and --resume to 8 give the 8-step loss curve step for step', () => {
    const part = path.join(work, 'lora-part');
    assert.equal(train(loraFlags(part, { 'max-steps': 4, 'save-interval': 4, 'learning-rate': 3e-2, 'min-lr': 3e-2 })).status, 0);
    const r = train(['--resume', '--checkpoint-dir', part, '--max-steps', '8']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual([...lossCurve(part).entries()], [...lossCurve(run).entries()]);
    assert.deepEqual(manifestOf(path.join(part, 'step-000008')).lora, manifestOf(runLatest).lora);
    assert.equal(fs.readFileSync(path.join(part, 'step-000008', 'weights.bin')).equals(fs.readFileSync(path.join(runLatest, 'weights.bin'))), true);
  });

  it('gptmed-generate on the LoRA run applies the adapters: the same seed samples another answer than the base\'s', () => {
    const ask = (checkpoint: string): string => {
      const g = runCli('generate', ['--checkpoint', checkpoint, '--device', 'wasm', '-p', 'What is Python?', '--max-new-tokens', '24', '--temperature', '1', '--seed', '3', '--quiet']);
      assert.equal(g.status, 0, g.stderr);
      return g.stdout;
    };
    assert.notEqual(ask(run), ask(base));
  });

  it('gptmed-evaluate and gptmed-serve take the LoRA run as a model like any other', async () => {
    const e = runCli('evaluate', ['--checkpoint', run, '--data', quizFile, '--limit', '3', '--max-new-tokens', '4', '--device', 'wasm', '--json', '--quiet']);
    assert.equal(e.status, 0, e.stderr);
    assert.equal((JSON.parse(e.stdout) as { pairs: number }).pairs, 3, e.stdout);
    const { app, url } = await startServer({ runsDir: work, checkpoints: [], host: '127.0.0.1', port: 0, maxConcurrent: 1, maxUploadMb: 1, logger: false });
    try {
      const model = (await (await fetch(`${url}/v1/models/lora`)).json()) as { parameters: number };
      assert.equal(model.parameters, manifestOf(baseBest).parameterCount);
      const body = { model: 'lora', messages: [{ role: 'user', content: 'What is Python?' }], max_tokens: 4, temperature: 0 };
      const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal(((await r.json()) as { object: string }).object, 'chat.completion');
    } finally {
      await app.close();
    }
  });

  it('gptmed-export --merge (hf) writes the merged weights: mergeAdapters of base and adapters, tensor for tensor', () => {
    const out = path.join(work, 'merged-hf');
    const r = runCli('export', ['--checkpoint', run, '--format', 'hf', '--merge', '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /LoRA run: adapters \(rank 4, alpha 16, .*\) merged into the weights of its base/);
    const bestDir = path.join(run, pointer(run, 'best'));
    const m = manifestOf(bestDir);
    const merged = mergeAdapters(readTensors(baseBest, manifestOf(baseBest).weights), readTensors(bestDir, m.weights), m.modelConfig, m.lora!);
    const st = readSafetensors(new Uint8Array(fs.readFileSync(path.join(out, 'model.safetensors'))), 'model.safetensors');
    for (const t of toGpt2(m.modelConfig, merged)) assert.deepEqual(toFloat32(st.tensors.get(t.name)!), t.data, t.name);
    const plain = runCli('export', ['--checkpoint', base, '--format', 'gguf', '--merge', '-o', path.join(work, 'base.gguf')]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stderr, /--merge: .* is not a LoRA run/);
  });

  describe('refuses in one line, writing nothing', () => {
    it('LoRA flags without --init-from, adapter flags without a rank, rank 0, a rank larger than a layer, an unknown target', () => {
      const bad = path.join(work, 'refused');
      assertRefused(runFlags(shards, bad, { 'lora-rank': 4 }), bad, 2, /--lora-rank: LoRA trains adapters on a trained model's frozen weights; give the model with --init-from CHECKPOINT/);
      assertRefused(runFlags(shards, bad, { ...noShape, 'init-from': base, 'lora-alpha': 8 }), bad, 2, /--lora-alpha: LoRA settings without --lora-rank/);
      assertRefused(loraFlags(bad, { 'lora-rank': 0 }), bad, 2, /loraRank \(--lora-rank\) must be a positive integer/);
      // The tiny test model: dModel 32, dFf 64; min(in, out) of every target is 32.
      assertRefused(loraFlags(bad, { 'lora-rank': 33 }), bad, 2, /--lora-rank 33: larger than the smallest adapted layer .* \(min\(in, out\) = 32 .*\); give at most 32/);
      assertRefused(loraFlags(bad, { 'lora-targets': 'attn.qkv,attn.k' }), bad, 2, /loraTargets \(--lora-targets\) must be a comma-separated list of attn\.qkv, attn\.proj, mlp\.fc, mlp\.proj/);
    });

    it('a base checkpoint changed or missing since the run: generate, export and --resume name it', () => {
      const copy = tempDir();
      fs.cpSync(work, copy, { recursive: true, filter: (src) => !src.includes('merged-hf') });
      const copyBase = path.join(copy, 'base', path.basename(baseBest));
      const copyRun = path.join(copy, 'lora');
      const latest = path.join(copyRun, pointer(copyRun, 'latest'));
      // The copied run still names the original base: point it at the copy's.
      for (const step of fs.readdirSync(copyRun).filter((n) => n.startsWith('step-'))) {
        const file = path.join(copyRun, step, 'manifest.json');
        const m = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointManifest;
        m.lora!.base.path = copyBase;
        fs.writeFileSync(file, JSON.stringify(m));
      }
      const weights = path.join(copyBase, 'weights.bin');
      const bytes = fs.readFileSync(weights);
      bytes[100] ^= 1;
      fs.writeFileSync(weights, bytes);
      const changed = /: the base checkpoint of the LoRA run .* has changed since \(weights\.bin sha256 [0-9a-f]{12}, the run was trained on [0-9a-f]{12}\); restore the original/;
      const g = runCli('generate', ['--checkpoint', latest, '--device', 'wasm', '-p', 'What is Python?', '--max-new-tokens', '2', '--quiet']);
      assert.equal(g.status, 1);
      assert.equal(g.stderr.trim().split('\n').length, 1, g.stderr);
      assert.match(g.stderr, changed);
      assert.ok(g.stderr.includes(copyBase), g.stderr);
      const e = runCli('export', ['--checkpoint', latest, '--format', 'gguf', '-o', path.join(copy, 'x.gguf')]);
      assert.equal(e.status, 1);
      assert.match(e.stderr, changed);
      assert.ok(!fs.existsSync(path.join(copy, 'x.gguf')));
      const r = train(['--resume', '--checkpoint-dir', copyRun, '--max-steps', '12']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, changed);
      fs.rmSync(path.join(copy, 'base'), { recursive: true });
      const gone = runCli('generate', ['--checkpoint', latest, '--device', 'wasm', '-p', 'What is Python?', '--max-new-tokens', '2', '--quiet']);
      assert.equal(gone.status, 1);
      assert.equal(gone.stderr.trim().split('\n').length, 1, gone.stderr);
      assert.match(gone.stderr, /: the base checkpoint of the LoRA run .* is missing; restore it there/);
    });
  });
});
