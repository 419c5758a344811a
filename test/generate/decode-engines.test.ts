/**
 * Decoding through the native forward (src/model/native-decoder.ts, chosen by sequences.ts) gives what
 * GPT.forward gives, on the trained test model: logits within float rounding at every step, the same
 * greedy and seeded answers; and --num-samples, decoded together, gives each sample's answer as decoded
 * alone, with its callbacks in sample order.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadNativeKernels } from '../../src/backend/native.js';
import { decodeAnswer, encodeConversation, fitPrompt, generate, loadModel, resolveOptions, type LoadedModel } from '../../src/generate/index.js';
import { sampleRng } from '../../src/generate/generate.js';
import { openSequences } from '../../src/generate/sequences.js';
import { NativeDecoder, nativeDecoderFor } from '../../src/model/native-decoder.js';
import { tempDir } from '../helpers.js';
import { trainTinyRun, type TinyRun } from './tiny-model.js';

const kernels = loadNativeKernels().kernels;
const skip = kernels ? false : 'the native kernels are not built here';

let run: TinyRun;
let lm: LoadedModel;

before(async () => {
  run = await trainTinyRun(tempDir('gptmed-decode-engines-'), 50);
  lm = await loadModel({ checkpoint: run.runDir, device: 'wasm' });
});

after(() => lm?.dispose());

function promptOf(question: string, maxNewTokens: number): number[] {
  return fitPrompt(encodeConversation(lm.tokenizer, question), lm.model.config.maxSeqLen, maxNewTokens).ids;
}

test('the native forward is what decoding uses on wasm, and its logits match GPT.forward at every step', { skip }, () => {
  for (const [forward, kind] of [['auto', 'native'], ['tfjs', 'tfjs-cache']] as const) {
    const sequences = openSequences(lm.model, 1, { forward });
    assert.equal(sequences.kind, kind);
    sequences.dispose();
  }
  const ids = promptOf(run.pairs[0].question, 30);
  const decoder = new NativeDecoder(lm.model, kernels!);
  const slot = decoder.openSlot();
  let logits = decoder.forward([{ slot, ids }]);
  while (ids.length < lm.model.config.maxSeqLen) {
    const reference = tf.tidy(() => lm.model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).slice([0, ids.length - 1, 0], [1, 1, -1]).dataSync());
    let diff = 0;
    for (let i = 0; i < reference.length; i++) diff = Math.max(diff, Math.abs(reference[i] - logits[i]));
    assert.ok(diff < 1e-4, `position ${ids.length}: ${diff}`);
    const next = reference.indexOf(Math.max(...reference));
    ids.push(next);
    if (ids.length < lm.model.config.maxSeqLen) logits = decoder.forward([{ slot, ids: [next] }]);
  }
});

test('greedy and seeded answers are the same through the native forward and GPT.forward', { skip }, async () => {
  for (const preset of ['greedy', 'balanced'] as const) {
    const settings = { ...resolveOptions({ preset, maxNewTokens: 30 }) };
    for (const [i, pair] of run.pairs.entries()) {
      const prompt = promptOf(pair.question, settings.maxNewTokens);
      const native = await decodeAnswer(lm.model, lm.tokenizer, prompt, settings, sampleRng(i, 0));
      const tfjs = await decodeAnswer(lm.model, lm.tokenizer, prompt, { ...settings, forward: 'tfjs' }, sampleRng(i, 0));
      assert.deepEqual(native, tfjs, `${preset}: ${pair.question}`);
    }
  }
});

test('--num-samples decodes the samples together: each answer as decoded alone, callbacks in sample order', async () => {
  const request = { preset: 'creative' as const, numSamples: 4, maxNewTokens: 20, seed: 11 };
  const settings = resolveOptions(request);
  const question = run.pairs[3].question;
  const events: string[] = [];
  const texts = ['', '', '', ''];
  const result = await generate(lm, question, {
    ...request,
    onText: (text, sample) => {
      events.push(`text ${sample}`);
      texts[sample] += text;
    },
    onAnswer: (_answer, sample) => events.push(`answer ${sample}`),
  });
  const prompt = promptOf(question, settings.maxNewTokens);
  for (let s = 0; s < 4; s++) {
    const alone = await decodeAnswer(lm.model, lm.tokenizer, prompt, { ...settings, forward: 'tfjs' }, sampleRng(settings.seed, s));
    assert.deepEqual(result.answers[s], alone, `sample ${s}`);
    assert.equal(texts[s], alone.text, `sample ${s} streamed`);
  }
  // Sample order: no event of a sample before the previous sample's answer.
  const order = events.map((e) => Number(e.split(' ')[1]));
  assert.deepEqual(order, [...order].sort((a, b) => a - b));
  assert.deepEqual(events.filter((e) => e.startsWith('answer')), ['answer 0', 'answer 1', 'answer 2', 'answer 3']);
});

test('an abort ends the samples at the answer being shown, as when they were decoded one by one', async () => {
  const controller = new AbortController();
  const heard = new Set<number>();
  const result = await generate(lm, run.pairs[2].question, {
    preset: 'creative',
    numSamples: 3,
    maxNewTokens: 20,
    signal: controller.signal,
    onText: (_text, sample) => {
      heard.add(sample);
      controller.abort();
    },
  });
  assert.equal(result.answers.length, 1);
  assert.equal(result.answers[0].stop, 'aborted');
  assert.deepEqual([...heard], [0], 'no text of a sample after the aborted one');
});

test('concurrent generations on one model share forward passes and answer as each alone', { skip }, async () => {
  const questions = run.pairs.slice(0, 3).map((p) => p.question);
  const options = { preset: 'balanced' as const, maxNewTokens: 20, seed: 5, numSamples: 2 };
  const alone = [];
  for (const q of questions) alone.push(await generate(lm, q, options));
  const decoder = nativeDecoderFor(lm.model, kernels!);
  const passesBefore = decoder.forwardPasses;
  const together = await Promise.all(questions.map((q) => generate(lm, q, options)));
  const passes = decoder.forwardPasses - passesBefore;
  assert.deepEqual(together.map((r) => r.answers), alone.map((r) => r.answers));
  const longest = Math.max(...alone.flatMap((r) => r.answers.map((a) => a.generatedTokens)));
  // One pass per step for all three (plus the prompts), where one after another took one per step each.
  assert.ok(passes <= longest + questions.length, `${passes} forward passes for answers of at most ${longest} tokens`);
  assert.equal(decoder.openSlots, 0, 'every slot closed');
});
