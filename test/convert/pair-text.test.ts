import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pairText, promptText } from '../../src/convert/pair-text.js';

test('promptText and pairText', () => {
  assert.equal(promptText('Why?'), 'Q: Why?\nA:');
  assert.equal(pairText({ question: 'Why?', answer: 'Because.\nReally.' }), 'Q: Why?\nA: Because.\nReally.');
});
