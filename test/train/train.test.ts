/**
 * gptmed-train end to end on shards made by the real tokenizer and tokenize
 * stages: learning, logs, determinism, exact resume, signals, kill -9,
 * divergence, and the run directory's rules.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { initBackend } from '../../src/backend/index.js';
import { loadCheckpoint } from '../../src/model/index.js';
import { repoRoot, tempDir } from '../helpers.js';
import { buildShards, lossCurve, metrics, pointer, runFlags, spawnTrain, train, waitFor, type Flags, type Shards } from './run-helpers.js';

let shards: Shards;
let work: string;
/** The uninterrupted reference run: 16 steps, checkpoints every 4. */
let reference: string;
const referenceFlags: Flags = { 'max-steps': 16, 'save-interval': 4, 'keep-last': 10 };

function readEvents(dir: string): Array<{ step: number; scalars?: Record<string, number>; file_version?: string; session_log?: string }> {
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.')).sort().map((f) => path.join(dir, f));
  const out = execFileSync('/usr/bin/python3', [path.join(repoRoot, 'test', 'train', 'read_events.py'), ...files], { encoding: 'utf8' });
  return out.trim().split('\n').map((l) => JSON.parse(l));
}

describe('gptmed-train', () => {
  before(() => {
    work = tempDir();
    shards = buildShards(work);
    reference = path.join(work, 'reference');
    const r = train(runFlags(shards, reference, referenceFlags));
    assert.equal(r.status, 0, r.stderr);
  });

  it('learns: val loss ends well below the unigram baseline, and both are printed', () => {
    const run = path.join(work, 'learn');
    const r = train(runFlags(shards, run, { 'max-steps': 60, 'learning-rate': 1e-2, 'eval-interval': 20, 'save-interval': 60 }));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^backend: wasm/m);
    assert.match(r.stderr, /[\d,]+ parameters/);
    assert.match(r.stderr, /unigram baseline: val loss \d+\.\d+/);
    const evals = metrics(run).filter((m) => m.type === 'eval');
    const last = evals[evals.length - 1];
    const baseline = last.unigramBaseline as number;
    assert.ok((last.valLoss as number) < baseline - 1, `val loss ${last.valLoss} vs unigram ${baseline}`);
    assert.match(r.stdout, /best val loss \d+\.\d+ .*unigram baseline \d+\.\d+/);
  });

  it('writes its resolved settings to config.json: every training setting and the model shape', () => {
    const settings = JSON.parse(fs.readFileSync(path.join(reference, 'config.json'), 'utf8'));
    const manifest = JSON.parse(fs.readFileSync(path.join(reference, 'step-000016', 'manifest.json'), 'utf8'));
    const { vocabSize, ...shape } = manifest.modelConfig;
    assert.equal(typeof vocabSize, 'number');
    assert.deepEqual(settings, { ...manifest.trainConfig, ...shape });
    assert.deepEqual(shape, { dModel: 32, nLayers: 1, nHeads: 2, dFf: 64, maxSeqLen: 64, dropout: shape.dropout });
  });

  it("reruns from a run's config.json alone: --config <run>/config.json gives the same settings and losses", () => {
    const rerun = path.join(work, 'rerun');
    const r = train(['--config', path.join(reference, 'config.json'), '--checkpoint-dir', rerun]);
    assert.equal(r.status, 0, r.stderr);
    const settings = (run: string): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
    assert.deepEqual(settings(rerun), { ...settings(reference), checkpointDir: rerun });
    assert.deepEqual([...lossCurve(rerun)], [...lossCurve(reference)]);
    // Without --checkpoint-dir the file's own directory is meant, and it holds a run: refused, nothing touched.
    const again = train(['--config', path.join(reference, 'config.json')]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /reference/);
    assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
  });

  it('--quiet prints no progress, only the summary', () => {
    const r = train([...runFlags(shards, path.join(work, 'quiet'), { 'max-steps': 3, 'eval-interval': 2 }), '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^trained to step 3: best val loss/);
  });

  it('a settings file kept in the run directory it names is not taken for a run, nor overwritten without --force', () => {
    const dir = path.join(work, 'planned');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'config.json');
    const mine = `${JSON.stringify({ ...JSON.parse(fs.readFileSync(path.join(reference, 'config.json'), 'utf8')), checkpointDir: dir, maxSteps: 2 })}\n`;
    fs.writeFileSync(file, mine);
    const r = train(['--config', file]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /planned\/config\.json: a run's settings file is already there; choose another --checkpoint-dir, or pass --force/);
    assert.equal(fs.readFileSync(file, 'utf8'), mine);
  });

  it('keeps the number of live tensors flat over steps', () => {
    const counts = metrics(reference).filter((m) => m.type === 'train').map((m) => m.tensors as number);
    assert.equal(counts.length, 16);
    assert.ok(counts.every((c) => c === counts[0]), `tensors per step: ${counts.join(',')}`);
  });

  it('writes TensorBoard event files that an independent reader accepts, matching metrics.jsonl', () => {
    const events = readEvents(path.join(reference, 'tensorboard'));
    assert.equal(events[0].file_version, 'brain.Event:2');
    const losses = lossCurve(reference);
    const trainEvents = events.filter((e) => e.scalars && 'train/loss' in e.scalars);
    assert.equal(trainEvents.length, 16);
    for (const e of trainEvents) {
      assert.equal(e.scalars!['train/loss'], Math.fround(losses.get(e.step)!));
      for (const tag of ['train/learning_rate', 'train/grad_norm', 'train/tokens_per_sec']) assert.ok(Number.isFinite(e.scalars![tag]), tag);
    }
    const valEvents = events.filter((e) => e.scalars && 'val/loss' in e.scalars);
    assert.deepEqual(valEvents.map((e) => e.step), [4, 8, 12, 16]);
    assert.ok(valEvents.every((e) => Math.abs(e.scalars!['val/perplexity'] - Math.exp(e.scalars!['val/loss'])) < 1e-3 * e.scalars!['val/perplexity']));
  });

  it('is deterministic: same seed and flags, same losses step for step; another seed differs', () => {
    const again = path.join(work, 'again');
    assert.equal(train(runFlags(shards, again, { ...referenceFlags, 'max-steps': 6 })).status, 0);
    const other = path.join(work, 'other-seed');
    assert.equal(train(runFlags(shards, other, { ...referenceFlags, 'max-steps': 6, seed: 7 })).status, 0);
    // --max-steps 6 changes the schedule after warmup, so compare the warmup steps with the reference.
    const ref = lossCurve(reference);
    const a = lossCurve(again);
    for (const s of [1, 2, 3]) assert.equal(a.get(s), ref.get(s), `step ${s}`);
    assert.notEqual(lossCurve(other).get(1), a.get(1));
  });

  it('resumes exactly: --resume-from a mid-run checkpoint reproduces the loss curve step for step', () => {
    const resumed = path.join(work, 'resumed');
    const r = train(['--resume-from', path.join(reference, 'step-000008'), '--checkpoint-dir', resumed]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resuming from .*step-000008 at step 8/);
    const ref = lossCurve(reference);
    const got = lossCurve(resumed);
    assert.deepEqual([...got.keys()], [9, 10, 11, 12, 13, 14, 15, 16]);
    for (const [step, loss] of got) assert.equal(loss, ref.get(step), `step ${step}`);
    const refEvals = metrics(reference).filter((m) => m.type === 'eval');
    const gotEvals = metrics(resumed).filter((m) => m.type === 'eval');
    assert.deepEqual(gotEvals.map((m) => m.valLoss), refEvals.filter((m) => m.step > 8).map((m) => m.valLoss));
    // The resumed run's own config.json: the reference's settings, in its own directory.
    const settings = (run: string): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
    assert.deepEqual(settings(resumed), { ...settings(reference), checkpointDir: resumed });
  });

  it('SIGTERM saves and exits cleanly; --resume then continues the same curve', async () => {
    // A constant learning rate makes the curve independent of --max-steps, so a long run can be stopped
    // anywhere and compared with a short uninterrupted one.
    const constant: Flags = { 'learning-rate': 2e-3, 'min-lr': 2e-3, 'warmup-steps': 0, 'save-interval': 1000, 'eval-interval': 1000 };
    const run = path.join(work, 'sigterm');
    const p = spawnTrain(runFlags(shards, run, { ...constant, 'max-steps': 5000 }));
    await waitFor(() => stepsLogged(run) >= 3, 'three steps');
    p.child.kill('SIGTERM');
    const { code } = await p.exit;
    assert.equal(code, 130, p.stderr());
    const stopped = /stopped by SIGTERM at step (\d+); checkpoint saved in .*; continue with --resume/.exec(p.stderr());
    assert.ok(stopped, p.stderr());
    const stoppedAt = Number(stopped[1]);
    assert.equal(pointer(run, 'latest'), `step-${String(stoppedAt).padStart(6, '0')}`);
    const r = train(['--resume', '--checkpoint-dir', run, '--max-steps', String(stoppedAt + 4)]);
    assert.equal(r.status, 0, r.stderr);
    const uninterrupted = path.join(work, 'sigterm-reference');
    assert.equal(train(runFlags(shards, uninterrupted, { ...constant, 'max-steps': stoppedAt + 4 })).status, 0);
    const expected = lossCurve(uninterrupted);
    const got = lossCurve(run);
    assert.equal(got.size, stoppedAt + 4);
    for (const [step, loss] of got) assert.equal(loss, expected.get(step), `step ${step}`);
  });

  it('kill -9 at any moment leaves a loadable latest checkpoint, and the run resumes', async () => {
    const run = path.join(work, 'killed');
    await initBackend('wasm');
    for (const delayMs of [0, 37, 91]) {
      fs.rmSync(run, { recursive: true, force: true });
      const p = spawnTrain(runFlags(shards, run, { 'max-steps': 400, 'save-interval': 1, 'keep-last': 2, 'eval-interval': 1000 }));
      await waitFor(() => fs.existsSync(path.join(run, 'latest')) && stepsLogged(run) >= 3, 'a few saved steps');
      await new Promise((r) => setTimeout(r, delayMs));
      p.child.kill('SIGKILL');
      const { signal } = await p.exit;
      assert.equal(signal, 'SIGKILL');
      const { model, manifest } = await loadCheckpoint(path.join(run, pointer(run, 'latest')));
      assert.ok(manifest.step >= 1);
      model.dispose();
    }
    const latest = Number(pointer(run, 'latest').slice('step-'.length));
    const r = train(['--resume', '--checkpoint-dir', run, '--max-steps', String(latest + 3)]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(pointer(run, 'latest'), `step-${String(latest + 3).padStart(6, '0')}`);
    assert.deepEqual(fs.readdirSync(run).filter((n) => n.includes('.tmp-')), []);
    assert.ok(fs.readdirSync(run).filter((n) => n.startsWith('step-')).length <= 3, 'keep-last 2 plus best');
  });

  it('a resumed run never replaces best with a worse model', () => {
    // Resume the reference's step 4 in its own directory (a copy): the run's best (step 16) is better than
    // any evaluation the resumed run makes before step 16, so best must stay where it is.
    const run = path.join(work, 'best-kept');
    fs.cpSync(reference, run, { recursive: true });
    const bestBefore = pointer(run, 'best');
    const evals = metrics(reference).filter((m) => m.type === 'eval');
    const bestLoss = Math.min(...evals.map((m) => m.valLoss as number));
    assert.equal(bestBefore, 'step-000016');
    const r = train(['--resume-from', path.join(run, 'step-000004'), '--eval-interval', '1']);
    assert.equal(r.status, 0, r.stderr);
    const resumedEvals = metrics(run).filter((m) => m.type === 'eval' && m.step > 4);
    assert.ok(resumedEvals.some((m) => (m.valLoss as number) < (evals[0].valLoss as number)), 'the resumed run improves on its own start');
    assert.equal(pointer(run, 'best'), 'step-000016');
    assert.ok(resumedEvals.every((m) => (m.bestValLoss as number) <= bestLoss));
  });

  it('refuses to overwrite a run without --force or --resume, in one line', () => {
    const r = train(runFlags(shards, reference, referenceFlags));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already holds a training run; continue it with --resume, .* or pass --force/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('stops on a non-finite loss with a clear message, keeping the last good checkpoint', () => {
    const run = path.join(work, 'diverge');
    const r = train(runFlags(shards, run, { 'max-steps': 20, 'learning-rate': 1e30, 'min-lr': 0, 'warmup-steps': 0, 'grad-clip': 0, 'save-interval': 1 }));
    assert.equal(r.status, 1);
    const line = r.stderr.trim().split('\n').pop()!;
    assert.match(line, /training diverged at step (\d+): loss (NaN|Infinity|-Infinity).*stopped without saving\. The last good checkpoint is .*step-0000\d\d: continue from it with --resume --checkpoint-dir \S+ --learning-rate \S+$/);
    const divergedAt = Number(/diverged at step (\d+)/.exec(line)![1]);
    assert.equal(pointer(run, 'latest'), `step-${String(divergedAt - 1).padStart(6, '0')}`);
    // The advice works: the command it gives resumes (here a rate still far too high diverges again, later).
    const advice = /continue from it with (.*)$/.exec(line)![1].split(' ');
    const again = train([...advice, '--train-data', shards.train, '--val-data', shards.val]);
    assert.equal(again.status, 1, again.stderr);
    assert.match(again.stderr, new RegExp(`resuming from .*step-0*${divergedAt - 1} `));
    assert.ok(Number(/diverged at step (\d+)/.exec(again.stderr)![1]) > divergedAt - 1);
  });

  it('diverging before its first checkpoint keeps nothing, so the advised retry needs no --force', () => {
    const run = path.join(work, 'diverge-early');
    const flags = { 'max-steps': 5, 'learning-rate': 1e30, 'min-lr': 0, 'warmup-steps': 0, 'grad-clip': 0, 'save-interval': 100, 'eval-interval': 100 };
    const r = train(runFlags(shards, run, flags));
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim().split('\n').pop()!, /diverged at step \d+: .*before the first checkpoint \(nothing was kept\); run again with a lower --learning-rate, e\.g\. --learning-rate 1\.0e\+29$/);
    assert.equal(fs.existsSync(run), false, 'the failed run left nothing behind');
    const retry = train(runFlags(shards, run, { ...flags, 'learning-rate': 1e-3 }));
    assert.equal(retry.status, 0, retry.stderr);
  });

  it('runs out of the wasm heap with one line that says what to change, and saves nothing', () => {
    const run = path.join(work, 'out-of-memory');
    // 340M parameters: weights, gradients and AdamW's moments outgrow the 4 GB wasm heap in the first step.
    const r = train(runFlags(shards, run, { 'd-model': 1536, 'n-layers': 12, 'n-heads': 12, 'd-ff': 6144, 'batch-size': 1, 'max-steps': 1 }));
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines.pop()!, /^gptmed-train: error: out of memory: a micro-batch of 1 row x \d+ positions does not fit the wasm backend's 4 GB heap \(nothing was saved\); shorter rows/);
    // The wasm module's own "Aborted()" line is not shown.
    assert.ok(!lines.some((l) => /Aborted\(/.test(l)), r.stderr);
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
    assert.ok(!fs.existsSync(path.join(run, 'latest')), 'no checkpoint');
  });

  it('checks its inputs: bad settings, a context too short for the rows, a different tokenizer on resume', () => {
    let r = train(runFlags(shards, path.join(work, 'bad1'), { 'batch-size': 0 }));
    assert.equal(r.status, 2, 'a bad flag is a usage error');
    assert.match(r.stderr, /batchSize \(--batch-size\) must be a positive integer \(got 0\)/);
    r = train(runFlags(shards, path.join(work, 'bad2'), { 'max-seq-len': 16 }));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /rows of 32 tokens need a context of 31, the model's maxSeqLen is 16/);
    const other = buildShards(work, { name: 'other', vocabSize: 280 });
    r = train(['--resume-from', path.join(reference, 'step-000004'), '--checkpoint-dir', path.join(work, 'bad3'), '--train-data', other.train, '--val-data', other.val]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /made with tokenizer sha256 [0-9a-f]{12}, but .* was trained with [0-9a-f]{12}/);
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
  });

  it('--quick-test uses batch 4, one epoch, at most 100 steps', () => {
    const run = path.join(work, 'quick');
    const r = train(runFlags(shards, run, { 'batch-size': null, 'quick-test': true }));
    assert.equal(r.status, 0, r.stderr);
    const { trainConfig } = JSON.parse(fs.readFileSync(path.join(run, pointer(run, 'latest'), 'manifest.json'), 'utf8'));
    assert.equal(trainConfig.batchSize, 4);
    assert.equal(trainConfig.numEpochs, 1);
    assert.equal(trainConfig.maxSteps, 100);
  });
});

/** Steps logged so far in a running run's metrics.jsonl (0 before it exists). */
function stepsLogged(run: string): number {
  return fs.existsSync(path.join(run, 'metrics.jsonl')) ? lossCurve(run).size : 0;
}
