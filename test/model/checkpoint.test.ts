import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { UserError } from '../../src/common/errors.js';
import { GPT, loadCheckpoint, newTrainState, resolveCheckpoint, resolveModelConfig, saveCheckpoint, writePointer, type ModelConfig } from '../../src/model/index.js';
import { tempDir } from '../helpers.js';

const config: ModelConfig = { vocabSize: 30, dModel: 16, nLayers: 1, nHeads: 2, dFf: 32, maxSeqLen: 12, dropout: 0.1 };
const fields = (step: number) => ({
  step,
  tokenizer: { file: '/data/tok.model', sha256: 'ab'.repeat(32) },
  specialIds: { pad: 0, unk: 1, bos: 2, eos: 3 },
  seqLen: 12,
  trainConfig: { batchSize: 4 },
  trainState: newTrainState(100, 0),
  backend: 'wasm',
});

describe('checkpoint format', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('saves and loads a model exactly, from a step directory or a run directory (best, else latest)', async () => {
    const run = tempDir();
    const model = new GPT(config, { seed: 2 });
    const ids = tf.tensor2d([[1, 2, 3, 4, 5]], undefined, 'int32');
    const expected = model.forward(ids).dataSync();
    const step3 = await saveCheckpoint(run, model, fields(3), null);
    const step5 = await saveCheckpoint(run, model, fields(5), [{ name: 'm.x', shape: [2], data: new Float32Array([1, 2]) }]);
    model.dispose();
    assert.equal(path.basename(step3), 'step-000003');
    assert.throws(() => resolveCheckpoint(run), /no checkpoint here/);
    writePointer(run, 'latest', step5);
    assert.equal(resolveCheckpoint(run), step5);
    writePointer(run, 'best', step3);
    assert.equal(resolveCheckpoint(run), step3);
    assert.equal(resolveCheckpoint(run, 'latest'), step5);
    assert.equal(resolveCheckpoint(path.join(step5, 'manifest.json')), step5);

    const { model: loaded, manifest } = await loadCheckpoint(run);
    try {
      assert.equal(manifest.step, 3);
      assert.deepEqual(manifest.modelConfig, config);
      assert.equal(manifest.tokenizer.sha256, 'ab'.repeat(32));
      assert.deepEqual(manifest.specialIds, { pad: 0, unk: 1, bos: 2, eos: 3 });
      assert.equal(manifest.parameterCount, loaded.countParameters());
      assert.deepEqual(loaded.forward(ids).dataSync(), expected);
    } finally {
      loaded.dispose();
    }
  });

  it('reports a damaged weights file or a dangling pointer in one line', async () => {
    const run = tempDir();
    const model = new GPT(config, { seed: 2 });
    const dir = await saveCheckpoint(run, model, fields(1), null);
    model.dispose();
    const weights = path.join(dir, 'weights.bin');
    const bytes = fs.readFileSync(weights);
    bytes[100] ^= 0xff;
    fs.writeFileSync(weights, bytes);
    await assert.rejects(loadCheckpoint(dir), (e: unknown) => e instanceof UserError && /weights\.bin: damaged/.test(e.message));
    fs.writeFileSync(path.join(run, 'latest'), 'step-000009\n');
    assert.throws(() => resolveCheckpoint(run), /points to step-000009, which is missing/);
    await assert.rejects(loadCheckpoint(path.join(run, 'nothing')), /no such checkpoint or run directory/);
  });

  it('reports a malformed lora block of a hand-edited manifest in one line naming the field', async () => {
    const run = tempDir();
    const model = new GPT(config, { seed: 2 });
    const dir = await saveCheckpoint(run, model, fields(1), null);
    model.dispose();
    const manifestPath = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    const lora = { rank: 4, alpha: 16, dropout: 0, targets: ['attn.qkv'], base: { path: run, step: 1, sha256: 'ab'.repeat(32) } };
    const cases: Array<[unknown, RegExp]> = [
      ['yes', /lora: must be an object/],
      [{ ...lora, rank: 0 }, /lora: rank must be/],
      [{ ...lora, targets: ['attn.q'] }, /lora targets: unknown target "attn\.q"/],
      [{ ...lora, base: { ...lora.base, step: 'one' } }, /lora base: step must be/],
      [{ ...lora, base: { ...lora.base, sha256: 'xyz' } }, /lora base: sha256 must be 64 hex digits/],
    ];
    for (const [block, message] of cases) {
      fs.writeFileSync(manifestPath, JSON.stringify({ ...manifest, lora: block }));
      await assert.rejects(loadCheckpoint(dir), (e: unknown) => e instanceof UserError && message.test(e.message) && e.message.startsWith(manifestPath));
    }
  });

  it('a step directory without manifest.json is called incomplete, not missing, and the advice names the flag given', async () => {
    const run = tempDir();
    const model = new GPT(config, { seed: 2 });
    const step = await saveCheckpoint(run, model, fields(4), null);
    model.dispose();
    writePointer(run, 'best', step);
    fs.rmSync(path.join(step, 'manifest.json'));
    const incomplete = /points to step-000004, which has no manifest\.json \(an incomplete or damaged checkpoint\); give another checkpoint with --checkpoint$/;
    assert.throws(() => resolveCheckpoint(run, 'best', '--checkpoint'), incomplete);
    await assert.rejects(loadCheckpoint(run), incomplete);
    assert.throws(() => resolveCheckpoint(path.join(run, 'best'), 'best', '--checkpoint'), incomplete);
    assert.throws(() => resolveCheckpoint(step, 'latest', '--resume-from'), /step-000004: a step directory without manifest\.json \(an incomplete or damaged checkpoint\); give another checkpoint with --resume-from$/);
    fs.rmSync(step, { recursive: true });
    assert.throws(() => resolveCheckpoint(run, 'best', '--checkpoint'), /points to step-000004, which is missing; give another checkpoint with --checkpoint$/);
  });

  it('merges preset, --config file and per-field overrides, and checks them', () => {
    const dir = tempDir();
    const file = path.join(dir, 'my.json');
    fs.writeFileSync(file, JSON.stringify({ dModel: 96, nHeads: 3 }));
    const c = resolveModelConfig({ modelSize: 'tiny', configFile: file, overrides: { nLayers: 1 }, vocabSize: 500 });
    assert.deepEqual(c, { dModel: 96, nLayers: 1, nHeads: 3, dFf: 512, maxSeqLen: 512, dropout: 0.1, vocabSize: 500 });
    fs.writeFileSync(file, JSON.stringify({ dModle: 96 }));
    assert.throws(() => resolveModelConfig({ modelSize: 'tiny', configFile: file, vocabSize: 500 }), /unknown model field "dModle"/);
    assert.throws(() => resolveModelConfig({ modelSize: 'tiny', overrides: { nHeads: 5 }, vocabSize: 500 }), /divisible by nHeads/);
    fs.writeFileSync(file, '{ not json');
    assert.throws(() => resolveModelConfig({ modelSize: 'tiny', configFile: file, vocabSize: 500 }), /my\.json: not valid JSON/);
  });
});
