import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers.js';

test('gptmed-generate --help shows every flag with its default, and examples', () => {
  const r = runCli('generate', ['--help']);
  assert.equal(r.status, 0, r.stderr);
  for (const flag of ['--prompt', '--checkpoint', '--tokenizer', '--max-new-tokens', '--max-length', '--temperature', '--top-k', '--top-p', '--repetition-penalty', '--no-repeat-ngram', '--seed', '--num-samples', '--stream', '--interactive', '--input-file', '--preset', '--device']) {
    assert.match(r.stdout, new RegExp(`${flag}\\b`), flag);
  }
  assert.match(r.stdout, /--temperature .*\[default: 0\.8\]/);
  assert.match(r.stdout, /--top-k .*\[default: 50\]/);
  assert.match(r.stdout, /--top-p .*\[default: 0\.95\]/);
  assert.match(r.stdout, /--repetition-penalty .*\[default: 1\.2\]/);
  assert.match(r.stdout, /--no-repeat-ngram .*\[default: 3\]/);
  assert.match(r.stdout, /"greedy", "balanced", "creative", "conservative"/);
  assert.match(r.stdout, /Examples:\n\s+gptmed-generate --prompt/);
});

test('gptmed-evaluate --help shows the greedy defaults it uses', () => {
  const r = runCli('evaluate', ['--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /--data .*\[required\]/);
  assert.match(r.stdout, /--preset .*\[default: greedy\]/);
  assert.match(r.stdout, /--temperature .*\[default: 0\]/);
  assert.match(r.stdout, /--limit/);
  assert.match(r.stdout, /Examples:/);
});

test('generate needs exactly one of --prompt, --input-file, --interactive: one line, exit 2', () => {
  for (const args of [[], ['--prompt', 'hi', '--interactive'], ['--prompt', 'hi', '--output', 'x.jsonl']]) {
    const r = runCli('generate', args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^gptmed-generate: error: (give exactly one of|--output goes with)/);
  }
});

test('a missing checkpoint or data file is one line naming it, exit 1', () => {
  const dir = tempDir();
  const missing = path.join(dir, 'no-such-run');
  const g = runCli('generate', ['--checkpoint', missing, '--prompt', 'hi', '--device', 'wasm']);
  assert.equal(g.status, 1);
  assert.match(g.stderr, new RegExp(`^gptmed-generate: error: ${missing}: no such checkpoint`, 'm'));
  assert.doesNotMatch(g.stderr, /\n\s+at /, 'no stack trace');
  const e = runCli('evaluate', ['--checkpoint', missing, '--data', path.join(dir, 'x.qa.txt'), '--device', 'wasm', '-o', path.join(dir, 'a.jsonl')]);
  assert.equal(e.status, 1);
  assert.match(e.stderr, /error: .*no such checkpoint/);
});
