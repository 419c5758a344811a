import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnswerStream, answerState } from '../../src/generate/stopping.js';
import { exactMatch, normalizeAnswer, PerplexityMeter, tokenF1 } from '../../src/generate/metrics.js';

test('the answer is cut before a new Q: line and trimmed', () => {
  assert.deepEqual(answerState(' Paris.\n\nQ: What is the capital of Spain?'), { text: 'Paris.', settled: 'Paris.', stopped: true });
  assert.equal(answerState(' Paris.\nQ:').stopped, true);
  // A Q: inside a line, or a line starting with other text, is part of the answer.
  const inline = answerState(' Ask Q: and A: in turn.\nQuestions are welcome.');
  assert.equal(inline.stopped, false);
  assert.equal(inline.text, 'Ask Q: and A: in turn.\nQuestions are welcome.');
  // Blank lines inside an answer stay.
  assert.equal(answerState('one\n\ntwo\n').text, 'one\n\ntwo');
});

test('streamed text settles only what the next token cannot change', () => {
  assert.equal(answerState('Paris.\n').settled, 'Paris.');
  assert.equal(answerState('Paris.\n\nQ').settled, 'Paris.', 'a pending new question is held back');
  assert.equal(answerState('Paris.\n\nQu').settled, 'Paris.\n\nQu');
  assert.equal(answerState('caf\uFFFD').settled, 'caf', 'an incomplete character is held back');
});

test('a stream of decoded prefixes shows exactly the final answer', () => {
  const decodedSteps = [' The', ' The answer', ' The answer is', ' The answer is 42.', ' The answer is 42.\n', ' The answer is 42.\n\nQ', ' The answer is 42.\n\nQ:'];
  const stream = new AnswerStream();
  let shown = '';
  let final = '';
  for (const d of decodedSteps) {
    const s = answerState(d);
    shown += stream.push(s);
    final = s.text;
    if (s.stopped) break;
  }
  shown += stream.finish(final);
  assert.equal(final, 'The answer is 42.');
  assert.equal(shown, final);
});

test('exact match and token F1 follow SQuAD normalisation', () => {
  assert.equal(normalizeAnswer('  The  Eiffel-Tower!\n'), 'eiffel tower');
  assert.equal(exactMatch('the eiffel tower', 'Eiffel Tower.'), 1);
  assert.equal(exactMatch('Eiffel', 'Eiffel Tower'), 0);
  assert.equal(tokenF1('Eiffel Tower', 'the Eiffel Tower'), 1);
  // answer: "eiffel tower paris" (3), reference: "tower" (1): common 1 -> P 1/3, R 1, F1 0.5
  assert.equal(tokenF1('Eiffel tower, Paris', 'tower'), 0.5);
  assert.equal(tokenF1('red red blue', 'red green'), 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2));
  assert.equal(tokenF1('nothing alike', 'totally different'), 0);
  assert.equal(tokenF1('', 'something'), 0);
});

test('perplexity is exp of the mean NLL per token over all answers', () => {
  const m = new PerplexityMeter();
  m.add(2 * Math.log(4), 2); // two tokens at p = 1/4
  m.add(Math.log(2), 2); // two tokens, total NLL log 2
  assert.equal(m.tokenCount, 4);
  assert.ok(Math.abs(m.perplexity - Math.exp((2 * Math.log(4) + Math.log(2)) / 4)) < 1e-12);
  assert.ok(Number.isNaN(new PerplexityMeter().perplexity));
});
