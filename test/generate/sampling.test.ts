import assert from 'node:assert/strict';
import { test } from 'node:test';
import seedrandom from 'seedrandom';
import {
  applyRepetitionPenalty,
  applyTemperature,
  argmax,
  nextToken,
  repeatedNgramTokens,
  softmax,
  topKFilter,
  topPFilter,
  type SamplingOptions,
} from '../../src/generate/sampling.js';

const logits = Float32Array.from([1.5, -0.5, 3.0, 0.0, 2.0, -2.0, 2.5, 0.5]);
const kept = (a: Float32Array): number[] => [...a.keys()].filter((i) => a[i] !== -Infinity);
const OFF: SamplingOptions = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, noRepeatNgram: 0 };

test('greedy is argmax, ties to the smaller id', () => {
  assert.equal(argmax(logits), 2);
  assert.equal(argmax(Float32Array.from([0, 5, 1, 5])), 1);
  assert.equal(nextToken(logits, [], { ...OFF, temperature: 0 }, () => 0.999), 2);
});

test('top-k keeps exactly the k largest logits, values unchanged', () => {
  for (let k = 1; k <= logits.length; k++) {
    const f = topKFilter(logits, k);
    const ids = kept(f);
    assert.equal(ids.length, k);
    const order = [2, 6, 4, 0, 7, 3, 1, 5];
    assert.deepEqual(ids.sort(), order.slice(0, k).sort());
    for (const i of ids) assert.equal(f[i], logits[i]);
  }
  // Ties do not let more than k through.
  assert.equal(kept(topKFilter(Float32Array.from([1, 1, 1, 1]), 2)).length, 2);
  assert.equal(kept(topKFilter(logits, 0)).length, logits.length, '0 turns it off');
});

test('top-p keeps the smallest set whose mass reaches p', () => {
  const probs = softmax(logits);
  const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]);
  for (const p of [0.05, 0.3, 0.5, 0.7, 0.9, 0.99]) {
    const ids = kept(topPFilter(logits, p));
    // The kept set is a prefix of the order by probability...
    assert.deepEqual(ids.sort(), order.slice(0, ids.length).sort(), `p=${p}`);
    const mass = ids.reduce((s, i) => s + probs[i], 0);
    // ...whose mass reaches p, while one token fewer would not.
    assert.ok(mass >= p, `p=${p}: mass ${mass}`);
    const less = mass - probs[order[ids.length - 1]];
    assert.ok(ids.length === 1 || less < p, `p=${p}: a smaller set reaches it`);
  }
  // Exactly on a boundary: probabilities 0.5, 0.3, 0.2 and p = 0.8 keep two.
  const exact = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
  assert.deepEqual(kept(topPFilter(exact, 0.8)), [0, 1]);
  assert.deepEqual(kept(topPFilter(exact, 0.81)), [0, 1, 2]);
  assert.equal(kept(topPFilter(logits, 1)).length, logits.length, '1 turns it off');
});

test('temperature divides the logits: sharper below 1, flatter above', () => {
  assert.deepEqual([...applyTemperature(logits, 0.5)], [...logits].map((x) => x * 2));
  const p1 = softmax(logits);
  const cold = softmax(applyTemperature(logits, 0.5));
  const hot = softmax(applyTemperature(logits, 2));
  assert.ok(cold[2] > p1[2] && p1[2] > hot[2]);
  assert.ok(cold[5] < p1[5] && p1[5] < hot[5]);
});

test('repetition penalty touches only tokens seen, and always lowers them', () => {
  const out = applyRepetitionPenalty(logits, [2, 1, 2], 2);
  assert.equal(out[2], 1.5); // positive: divided
  assert.equal(out[1], -1.0); // negative: multiplied
  for (const i of [0, 3, 4, 5, 6, 7]) assert.equal(out[i], logits[i]);
  assert.deepEqual([...applyRepetitionPenalty(logits, [2], 1)], [...logits]);
  assert.deepEqual([...logits], [1.5, -0.5, 3.0, 0.0, 2.0, -2.0, 2.5, 0.5], 'input not modified');
});

test('no-repeat n-gram bans exactly the tokens that would repeat an n-gram', () => {
  // history 5 6 7 5 6: the 3-gram "5 6 7" exists, so after "5 6" the token 7 is banned.
  assert.deepEqual([...repeatedNgramTokens([5, 6, 7, 5, 6], 3)], [7]);
  assert.deepEqual([...repeatedNgramTokens([5, 6, 7, 5, 6], 2)].sort(), [7]);
  assert.deepEqual([...repeatedNgramTokens([1, 2, 1, 3, 1], 2)].sort(), [2, 3]);
  assert.deepEqual([...repeatedNgramTokens([5, 6, 7, 5, 6], 0)], []);
  assert.deepEqual([...repeatedNgramTokens([4, 4], 3)], []);
  // In the sampler: greedy would pick 2, but 7 2 already followed 7 once.
  const greedy = { ...OFF, temperature: 0, noRepeatNgram: 2 };
  assert.equal(nextToken(logits, [7, 2, 7], greedy, Math.random), 6);
  assert.equal(nextToken(logits, [7, 2, 7], { ...greedy, noRepeatNgram: 0 }, Math.random), 2);
});

test('banned ids are never chosen', () => {
  const rng = seedrandom('ban');
  for (let i = 0; i < 200; i++) {
    const t = nextToken(logits, [], { ...OFF, temperature: 5 }, rng, [2, 6]);
    assert.ok(t !== 2 && t !== 6);
  }
});

test('sampling follows the filtered distribution and the seed', () => {
  const opts = { ...OFF, topK: 3 };
  const draw = (seed: string, n: number): number[] => {
    const rng = seedrandom(seed);
    return Array.from({ length: n }, () => nextToken(logits, [], opts, rng));
  };
  const a = draw('42', 3000);
  assert.deepEqual(a, draw('42', 3000), 'same seed, same samples');
  assert.notDeepEqual(a.slice(0, 50), draw('43', 50), 'another seed, other samples');
  assert.deepEqual([...new Set(a)].sort(), [2, 4, 6], 'only the top 3');
  const p = softmax(Float32Array.from([3.0, 2.0, 2.5]));
  const freq = (id: number): number => a.filter((x) => x === id).length / a.length;
  assert.ok(Math.abs(freq(2) - p[0]) < 0.03 && Math.abs(freq(4) - p[1]) < 0.03 && Math.abs(freq(6) - p[2]) < 0.03);
});
