/**
 * Pretraining on plain text, then fine-tuning on Q&A pairs (issue 15), through the real stages: one tokenizer
 * from a plain-text corpus and the Q&A file together, text shards and Q&A shards from it, a run on the text,
 * then `--init-from` that run on the Q&A shards. Against a run on the Q&A shards alone for the same steps,
 * with the same shape, seed and schedule, the fine-tuned model's Q&A val loss must be lower at every
 * evaluation. (MANUAL's "Pretraining, then fine-tuning" has the same comparison at the tiny preset's size.)
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { fixturesDir, repoRoot, runCli, tempDir } from '../helpers.js';
import { metrics, toArgs, train, type Flags } from './run-helpers.js';

const corpus = path.join(fixturesDir, 'reference', 'sotu-1mb.txt');
const qaFile = path.join(repoRoot, 'data', 'sample.qa.txt');
const shape: Flags = { 'model-size': 'tiny', 'd-model': 64, 'n-layers': 2, 'n-heads': 4, 'd-ff': 128, 'max-seq-len': 64 };
const schedule: Flags = { device: 'wasm', 'batch-size': 16, 'learning-rate': 3e-3, 'warmup-steps': 5, 'eval-batches': 8, 'log-interval': 20, seed: 3 };
const QA_STEPS = 60;

function mustRun(name: string, args: string[]): void {
  const r = runCli(name, args);
  assert.equal(r.status, 0, `gptmed-${name}: ${r.stderr}`);
}

/** Val loss at each evaluation of a run, by step. */
const valCurve = (run: string): Map<number, number> => new Map(metrics(run).filter((m) => m.type === 'eval').map((m) => [m.step, m.valLoss as number]));

describe('pretraining on plain text, then fine-tuning on Q&A', () => {
  const work = tempDir('gptmed-pretrain-');
  const qaRun = (name: string, extra: Flags): string => {
    const run = path.join(work, name);
    const qa = path.join(work, 'qa-shards');
    const r = train(toArgs({ ...schedule, 'train-data': path.join(qa, 'train.npy'), 'val-data': path.join(qa, 'val.npy'), 'checkpoint-dir': run, 'max-steps': QA_STEPS, 'eval-interval': 15, ...extra }));
    assert.equal(r.status, 0, r.stderr);
    return run;
  };

  before(() => {
    const text = path.join(work, 'corpus.txt');
    fs.writeFileSync(text, fs.readFileSync(corpus).subarray(0, 400_000).toString('utf8').replace(/\uFFFD$/, ''));
    const tok = path.join(work, 'tok');
    mustRun('train-tokenizer', ['--input', text, qaFile, '--output-prefix', tok, '--vocab-size', '1000', '--quiet']);
    mustRun('tokenize', ['--input', text, '--input-format', 'text', '--tokenizer', `${tok}.model`, '--output-dir', path.join(work, 'text-shards'), '--max-length', '64', '--quiet']);
    mustRun('tokenize', ['--input', qaFile, '--tokenizer', `${tok}.model`, '--output-dir', path.join(work, 'qa-shards'), '--max-length', '64', '--quiet']);
    const text64 = path.join(work, 'text-shards');
    const r = train(toArgs({ ...shape, ...schedule, 'train-data': path.join(text64, 'train.npy'), 'val-data': path.join(text64, 'val.npy'), 'checkpoint-dir': path.join(work, 'pretrained'), 'max-steps': 200, 'eval-interval': 100 }));
    assert.equal(r.status, 0, r.stderr);
  });

  it('the fine-tuned model has the lower Q&A val loss at every evaluation than one trained on the pairs alone', () => {
    const scratch = valCurve(qaRun('scratch', shape));
    const tuned = valCurve(qaRun('tuned', { 'init-from': path.join(work, 'pretrained') }));
    assert.deepEqual([...tuned.keys()], [15, 30, 45, 60]);
    assert.deepEqual([...scratch.keys()], [...tuned.keys()]);
    for (const [step, loss] of tuned) assert.ok(loss < scratch.get(step)!, `step ${step}: fine-tuned ${loss.toFixed(3)} vs Q&A alone ${scratch.get(step)!.toFixed(3)}`);
  });
});
