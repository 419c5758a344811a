import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers.js';

test('an unknown flag is one line on stderr and exit status 2', () => {
  const r = runCli('convert', ['x.csv', '-o', 'y.txt', '--bogus-flag']);
  assert.equal(r.status, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^gptmed-convert: error: .*bogus-flag.*--help/);
});

test('the umbrella command lists every stage and requires one', () => {
  const help = runCli('gptmed', ['--help']);
  assert.equal(help.status, 0);
  for (const name of ['convert', 'train-tokenizer', 'tokenize', 'train', 'generate', 'evaluate']) {
    assert.match(help.stdout, new RegExp(`gptmed ${name}\\b`));
  }
  const none = runCli('gptmed', []);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^gptmed: error: /);
});

test('--help works for every binary', () => {
  for (const name of ['convert', 'train-tokenizer', 'tokenize', 'train', 'generate', 'evaluate']) {
    const r = runCli(name, ['--help']);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`gptmed-${name}`));
  }
});
