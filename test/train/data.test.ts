/** Batches, data order, schedule, baseline and gradient accumulation, on shards from the real tokenize stage. */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { initBackend } from '../../src/backend/index.js';
import { loadTokenRows, type TokenRows } from '../../src/dataset/shards.js';
import { GPT } from '../../src/model/index.js';
import { epochOrder, loadSplit, makeBatch, stepsPerEpoch, unigramBaseline } from '../../src/train/data.js';
import { AdamW } from '../../src/train/optimizer.js';
import { learningRateAt } from '../../src/train/schedule.js';
import { TrainStep } from '../../src/train/step.js';
import { tempDir } from '../helpers.js';
import { buildShards } from './run-helpers.js';

let masked: TokenRows;
let val: TokenRows;

describe('training data and steps', () => {
  before(() => {
    const shards = buildShards(tempDir(), { maskPrompt: true });
    masked = loadTokenRows(shards.train);
    val = loadTokenRows(shards.val);
    assert.ok(masked.mask, 'tokenize --mask-prompt writes a mask');
  });

  it('batches: x is the row without its last token, y without its first; only unpadded answer targets count', () => {
    const L = masked.seqLen;
    const b = makeBatch(masked, [3, 0]);
    assert.equal(b.T, L - 1);
    const pad = masked.meta.specialIds.pad;
    let counted = 0;
    [3, 0].forEach((row, r) => {
      for (let t = 0; t < L - 1; t++) {
        assert.equal(b.x[r * (L - 1) + t], masked.tokens[row * L + t]);
        assert.equal(b.y[r * (L - 1) + t], masked.tokens[row * L + t + 1]);
        const expected = masked.tokens[row * L + t + 1] !== pad && masked.mask![row * L + t + 1] === 1 ? 1 : 0;
        assert.equal(b.weights[r * (L - 1) + t], expected, `row ${row} position ${t}`);
        counted += expected;
      }
    });
    assert.equal(b.targets, counted);
    // The mask leaves out question tokens: fewer targets than non-pad tokens.
    const nonPad = Array.from(b.y).filter((t) => t !== pad).length;
    assert.ok(counted > 0 && counted < nonPad, `${counted} answer targets of ${nonPad}`);
  });

  it('naming one file of a split cut with --shard-size loads the whole split, in order', () => {
    const cut = buildShards(tempDir(), { maskPrompt: true, shardSize: 100 });
    const { data, files } = loadSplit(cut.train);
    assert.equal(files.length, Math.ceil(masked.rows / 100));
    assert.equal(data.rows, masked.rows);
    assert.deepEqual(data.tokens, masked.tokens);
    assert.deepEqual(data.mask, masked.mask);
  });

  it('data order: a seeded permutation per epoch, the same for the same seed', () => {
    const a = epochOrder(masked.rows, 42, 0);
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: masked.rows }, (_, i) => i));
    assert.deepEqual(epochOrder(masked.rows, 42, 0), a);
    assert.notDeepEqual(epochOrder(masked.rows, 42, 1), a);
    assert.notDeepEqual(epochOrder(masked.rows, 43, 0), a);
    assert.equal(stepsPerEpoch(101, 8, 1), 13);
    assert.equal(stepsPerEpoch(101, 8, 4), 4);
  });

  it('schedule: linear warmup, then cosine down to min-lr at the last step', () => {
    const s = { learningRate: 1e-3, minLr: 1e-5, warmupSteps: 10, totalSteps: 110 };
    assert.equal(learningRateAt(1, s), 1e-4);
    assert.equal(learningRateAt(10, s), 1e-3);
    assert.ok(Math.abs(learningRateAt(60, s) - (1e-5 + 0.5 * (1e-3 - 1e-5))) < 1e-12);
    assert.ok(Math.abs(learningRateAt(110, s) - 1e-5) < 1e-12);
  });

  it('the unigram baseline is the cross-entropy of val targets under smoothed train frequencies', () => {
    const V = masked.meta.vocabSize;
    const counts = new Float64Array(V);
    let total = 0;
    const each = (d: TokenRows, f: (tok: number) => void): void => {
      for (let p = 0; p < d.tokens.length; p++) {
        if (p % d.seqLen === 0) continue;
        if (d.tokens[p] !== d.meta.specialIds.pad && (!d.mask || d.mask[p] === 1)) f(d.tokens[p]);
      }
    };
    each(masked, (t) => {
      counts[t]++;
      total++;
    });
    let nll = 0;
    let n = 0;
    each(val, (t) => {
      nll -= Math.log((counts[t] + 1) / (total + V));
      n++;
    });
    assert.ok(Math.abs(unigramBaseline(masked, val) - nll / n) < 1e-9);
    assert.ok(nll / n > 1 && nll / n < Math.log(V));
  });

  it('gradient accumulation: 2 micro-batches of 4 equal one batch of 8, dropout masks included', async () => {
    await initBackend('wasm');
    const config = { vocabSize: masked.meta.vocabSize, dModel: 32, nLayers: 1, nHeads: 2, dFf: 64, maxSeqLen: 64, dropout: 0.1 };
    const rows = Array.from({ length: 8 }, (_, i) => i);
    const run = async (micro: number[][]): Promise<number[]> => {
      const model = new GPT(config, { seed: 3 });
      const opt = new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 });
      const step = new TrainStep(model, opt, 1.0);
      const losses: number[] = [];
      for (const s of [0, 1, 2]) losses.push((await step.run(micro.map((ids) => makeBatch(masked, ids)), 1e-3, `acc:${s}`)).loss);
      opt.dispose();
      model.dispose();
      return losses;
    };
    const whole = await run([rows]);
    const accumulated = await run([rows.slice(0, 4), rows.slice(4)]);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(whole[i] - accumulated[i]) < 1e-4, `step ${i + 1}: ${whole[i]} vs ${accumulated[i]}`);
  });
});
