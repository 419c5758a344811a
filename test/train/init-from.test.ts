/**
 * gptmed-train --init-from: a new run (step 0, fresh optimizer and schedule) from another run's weights.
 * The weights really come over, the manifest says where from, the run resumes exactly and reruns from its
 * config.json, it fine-tunes on --mask-prompt shards, generate and serve show its source, and bad input is
 * one line with nothing written.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { startServer } from '../../src/serve/server.js';
import { runCli, tempDir } from '../helpers.js';
import { assertRefused, buildShards, lossCurve, manifestOf, metrics, noShape, quizFile, runFlags, train, trainedSource, type Flags, type Shards } from './run-helpers.js';

let work: string;
let shards: Shards;
/** The source run: the quiz learned for 40 steps; its best checkpoint is what --init-from takes. */
let source: string;
let sourceBest: string;

/** A constant learning rate: the loss curve does not depend on --max-steps, so a short run and its resume compare with a long one. */
const constantLr: Flags = { 'learning-rate': 2e-3, 'min-lr': 2e-3, 'warmup-steps': 0 };

const settingsOf = (run: string): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
const evalLosses = (run: string): Map<number, number> => new Map(metrics(run).filter((m) => m.type === 'eval').map((m) => [m.step, m.valLoss as number]));

/** A run from `source`'s weights on `data` into `run`; `extra` adds or replaces flags. */
function initFlags(data: Shards, run: string, extra: Flags = {}): string[] {
  return runFlags(data, run, { ...noShape, 'init-from': source, ...extra });
}

describe('gptmed-train --init-from', () => {
  before(() => {
    work = tempDir();
    ({ shards, run: source, best: sourceBest } = trainedSource(work, 'source'));
  });

  it("takes the checkpoint's weights: the first evaluation is the source's val loss, far below a random model's", () => {
    // A learning rate too small to move the weights: step 1's val loss is the source model's own.
    const tiny: Flags = { 'max-steps': 1, 'eval-interval': 1, 'learning-rate': 1e-9, 'min-lr': 1e-9, 'warmup-steps': 0 };
    const run = path.join(work, 'weights');
    const r = train(initFlags(shards, run, tiny));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /initialised from .*step-0000\d\d \(step \d+, weights sha256 [0-9a-f]{12}\): a new run at step 0/);
    const scratch = path.join(work, 'weights-scratch');
    assert.equal(train(runFlags(shards, scratch, tiny)).status, 0);
    const sourceLoss = manifestOf(sourceBest).trainState.bestValLoss!;
    const got = evalLosses(run).get(1)!;
    assert.ok(Math.abs(got - sourceLoss) < 1e-3, `step 1 val loss ${got}, the source's ${sourceLoss}`);
    const baseline = metrics(run).find((m) => m.type === 'eval')!.unigramBaseline as number;
    assert.ok(got < baseline - 1, `val loss ${got} vs unigram ${baseline}`);
    assert.ok(evalLosses(scratch).get(1)! > baseline - 0.5, 'a random model is not below the baseline');
  });

  it('starts a new run: step 1 first, the checkpoint\'s shape, and initFrom in manifests, config.json and metrics', () => {
    const run = path.join(work, 'new-run');
    const r = train(initFlags(shards, run, { 'max-steps': 4, 'save-interval': 2 }));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual([...lossCurve(run).keys()], [1, 2, 3, 4]);
    const m = manifestOf(path.join(run, 'step-000004'));
    const from = manifestOf(sourceBest);
    assert.deepEqual(m.initFrom, { path: sourceBest, step: from.step, sha256: from.weights.sha256 });
    assert.deepEqual(manifestOf(path.join(run, 'step-000002')).initFrom, m.initFrom);
    assert.deepEqual(m.modelConfig, from.modelConfig);
    assert.equal(m.trainState.optimizerUpdates, 4, 'a fresh optimizer: only this run\'s updates');
    assert.equal(m.trainConfig.initFrom, sourceBest);
    assert.equal(settingsOf(run).initFrom, sourceBest, 'the step directory itself: a rerun starts from the same weights');
    assert.equal(metrics(run).find((x) => x.type === 'start')!.initFrom, sourceBest);
    // A run from random weights records none.
    assert.equal(manifestOf(sourceBest).initFrom, undefined);
    assert.equal(settingsOf(source).initFrom, null);
  });

  it('keeps --dropout settable (a flag, else the checkpoint\'s)', () => {
    const run = path.join(work, 'dropout');
    assert.equal(train(initFlags(shards, run, { 'max-steps': 1, dropout: 0 })).status, 0);
    assert.equal(manifestOf(path.join(run, 'step-000001')).modelConfig.dropout, 0);
    assert.equal(manifestOf(sourceBest).modelConfig.dropout, 0.1);
  });

  it('resumes exactly (--resume), keeping initFrom; and reruns from its config.json loss for loss', () => {
    const whole = path.join(work, 'whole');
    assert.equal(train(initFlags(shards, whole, { ...constantLr, 'max-steps': 8 })).status, 0);
    const part = path.join(work, 'part');
    assert.equal(train(initFlags(shards, part, { ...constantLr, 'max-steps': 4 })).status, 0);
    const r = train(['--resume', '--checkpoint-dir', part, '--max-steps', '8']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resuming from .*step-000004 at step 4/);
    assert.doesNotMatch(r.stderr, /initialised from/);
    const expected = lossCurve(whole);
    const got = lossCurve(part);
    assert.equal(got.size, 8);
    for (const [step, loss] of got) assert.equal(loss, expected.get(step), `step ${step}`);
    assert.deepEqual(manifestOf(path.join(part, 'step-000008')).initFrom, manifestOf(path.join(whole, 'step-000008')).initFrom);
    assert.equal(settingsOf(part).initFrom, sourceBest);

    const rerun = path.join(work, 'rerun');
    const again = train(['--config', path.join(whole, 'config.json'), '--checkpoint-dir', rerun]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual([...lossCurve(rerun)], [...expected]);
    assert.deepEqual(settingsOf(rerun), { ...settingsOf(whole), checkpointDir: rerun });
  });

  it('fine-tunes on --mask-prompt shards (answer-only loss) made with the same tokenizer', () => {
    const maskDir = path.join(work, 'mask-shards');
    const t = runCli('tokenize', ['--input', quizFile, '--tokenizer', shards.tokenizer, '--output-dir', maskDir, '--max-length', '32', '--mask-prompt']);
    assert.equal(t.status, 0, t.stderr);
    const mask: Shards = { ...shards, dir: maskDir, train: path.join(maskDir, 'train.npy'), val: path.join(maskDir, 'val.npy') };
    const steps: Flags = { 'max-steps': 8, 'eval-interval': 8 };
    const tuned = path.join(work, 'runs', 'tuned');
    const r = train(initFlags(mask, tuned, steps));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /loss on answer tokens only/);
    const scratch = path.join(work, 'mask-scratch');
    assert.equal(train(runFlags(mask, scratch, steps)).status, 0);
    const [tunedLoss, scratchLoss] = [evalLosses(tuned).get(8)!, evalLosses(scratch).get(8)!];
    assert.ok(tunedLoss < scratchLoss - 1, `answer-only val loss after 8 steps: fine-tuned ${tunedLoss}, from scratch ${scratchLoss}`);
    assert.equal(manifestOf(path.join(tuned, 'step-000008')).initFrom!.path, sourceBest);
  });

  it('gptmed-generate and gptmed-serve show where the weights came from', async () => {
    const tuned = path.join(work, 'runs', 'tuned');
    const g = runCli('generate', ['--checkpoint', tuned, '--device', 'wasm', '-p', 'What is Python?', '--max-new-tokens', '4']);
    assert.equal(g.status, 0, g.stderr);
    assert.match(g.stderr, new RegExp(`^model: .*tuned.*\\(step 8\\), initialised from ${sourceBest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(step \\d+, weights sha256 [0-9a-f]{12}\\)$`, 'm'));
    const { app, url } = await startServer({ runsDir: path.join(work, 'runs'), checkpoints: [], host: '127.0.0.1', port: 0, maxConcurrent: 1, maxUploadMb: 1, logger: false });
    try {
      const model = (await (await fetch(`${url}/v1/models/tuned`)).json()) as { init_from: unknown };
      assert.deepEqual(model.init_from, manifestOf(path.join(tuned, 'step-000008')).initFrom);
    } finally {
      await app.close();
    }
  });

  describe('refuses in one line, writing nothing', () => {
    it('a missing or damaged checkpoint', () => {
      const run = path.join(work, 'refused');
      assertRefused(initFlags(shards, run, { 'init-from': path.join(work, 'nope') }), run, 1, /nope: no such checkpoint or run directory/);
      const damaged = path.join(work, 'damaged', 'step-000040');
      fs.cpSync(sourceBest, damaged, { recursive: true });
      const weights = path.join(damaged, 'weights.bin');
      const bytes = fs.readFileSync(weights);
      bytes[100] ^= 0xff;
      fs.writeFileSync(weights, bytes);
      assertRefused(initFlags(shards, run, { 'init-from': damaged }), run, 1, /weights\.bin: damaged \(size or sha256 differs from manifest\.json\)/);
      fs.writeFileSync(path.join(damaged, 'manifest.json'), '{"format": "gptmed-check');
      assertRefused(initFlags(shards, run, { 'init-from': damaged }), run, 1, /manifest\.json: unreadable checkpoint manifest/);
      fs.mkdirSync(path.join(work, 'empty-run'));
      assertRefused(initFlags(shards, run, { 'init-from': path.join(work, 'empty-run') }), run, 1, /empty-run: no checkpoint here/);
    });

    it("shards made with another tokenizer (naming meta.json and manifest.json), rows longer than the checkpoint's context", () => {
      const other = buildShards(work, { name: 'other', vocabSize: 200 });
      const run = path.join(work, 'refused');
      assertRefused(initFlags(other, run), run, 1, /other-shards\/meta\.json: shards made with tokenizer sha256 [0-9a-f]{12} .*, but .*source\/step-0000\d\d\/manifest\.json records [0-9a-f]{12}; --init-from needs shards made with the checkpoint's tokenizer/);
      const longDir = path.join(work, 'long-shards');
      const t = runCli('tokenize', ['--input', quizFile, '--tokenizer', shards.tokenizer, '--output-dir', longDir, '--max-length', '80']);
      assert.equal(t.status, 0, t.stderr);
      const long: Shards = { ...shards, dir: longDir, train: path.join(longDir, 'train.npy'), val: path.join(longDir, 'val.npy') };
      assertRefused(initFlags(long, run), run, 1, /train\.npy: rows of 80 tokens need a context of 79, the model's maxSeqLen is 64; tokenize with a smaller --max-length$/m);
    });

    it('shape flags, a --config file of another shape, --resume or --resume-from', () => {
      const run = path.join(work, 'refused');
      assertRefused(runFlags(shards, run, { 'init-from': source }), run, 2, /--model-size, --d-model, --n-layers, --n-heads, --d-ff, --max-seq-len: with --init-from the model's shape comes from the checkpoint/);
      assertRefused(initFlags(shards, run, { 'd-model': 64 }), run, 2, /^gptmed-train: error: --d-model: with --init-from the model's shape comes from the checkpoint \(.*\); leave shape flags out \(--dropout may be set\)$/m);
      const file = path.join(work, 'wide.json');
      fs.writeFileSync(file, JSON.stringify({ dModel: 64, nLayers: 1, batchSize: 8 }));
      assertRefused(initFlags(shards, run, { config: file }), run, 1, /wide\.json: dModel 64, but the model's shape comes from the checkpoint --init-from names \(.*: dModel 32\); remove the field from the file/);
      assertRefused(['--resume', '--checkpoint-dir', run, '--init-from', source], run, 2, /--init-from starts a new run; it does not go with --resume or --resume-from/);
      assertRefused(['--resume-from', sourceBest, '--checkpoint-dir', run, '--init-from', source], run, 2, /--init-from starts a new run/);
    });

    it('a checkpoint of the run directory it would replace', () => {
      const before = fs.readdirSync(source).sort();
      const r = train(initFlags(shards, source, { 'init-from': sourceBest, force: true }));
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /--init-from names a checkpoint of the run in --checkpoint-dir .*source, which the new run would replace; choose another --checkpoint-dir/);
      assert.deepEqual(fs.readdirSync(source).sort(), before);
    });
  });
});
