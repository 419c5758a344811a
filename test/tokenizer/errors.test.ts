/** Bad input to gptmed-train-tokenizer and to loading a model: one line, non-zero exit, nothing half-written. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../src/common/errors.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { runCli, referenceDir, tempDir } from '../helpers.js';

const dir = tempDir('gptmed-tok-errors-');
const quiz = path.join(referenceDir, 'bsdgames-quiz.qa.txt');

function oneLineError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^gptmed-train-tokenizer: error: /);
  assert.match(lines[0], pattern);
}

function outputsOf(prefix: string): string[] {
  return fs.readdirSync(path.dirname(prefix)).filter((f) => f.startsWith(path.basename(prefix)) || f.startsWith(`.${path.basename(prefix)}`));
}

test('an empty input is refused', () => {
  const input = path.join(dir, 'empty.txt');
  fs.writeFileSync(input, '');
  const prefix = path.join(dir, 'out-empty');
  oneLineError(runCli('train-tokenizer', ['--input', input, '--output-prefix', prefix]), /empty\.txt: input file is empty/);
  assert.deepEqual(outputsOf(prefix), []);
});

test('input with blank lines only has no text to train on', () => {
  const input = path.join(dir, 'blank.txt');
  fs.writeFileSync(input, '\n\n  \n');
  const prefix = path.join(dir, 'out-blank');
  oneLineError(runCli('train-tokenizer', ['--input', input, '--output-prefix', prefix, '--quiet']), /no text to train on/);
  assert.deepEqual(outputsOf(prefix), []);
});

test('a vocab size the text cannot fill says the largest it can, and that size works', async () => {
  const prefix = path.join(dir, 'out-big');
  const r = runCli('train-tokenizer', ['--input', quiz, '--output-prefix', prefix, '--vocab-size', '60000', '--quiet']);
  oneLineError(r, /can fill a vocabulary of at most (\d+) pieces, not 60000; use --vocab-size \1 or less/);
  assert.deepEqual(outputsOf(prefix), []);
  const largest = r.stderr.match(/at most (\d+)/)![1];
  const ok = runCli('train-tokenizer', ['--input', quiz, '--output-prefix', prefix, '--vocab-size', largest, '--quiet']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal((await loadTokenizer(`${prefix}.model`)).vocabSize, Number(largest));
});

test('a vocab size smaller than the alphabet says the least that works', () => {
  const prefix = path.join(dir, 'out-small');
  oneLineError(runCli('train-tokenizer', ['--input', quiz, '--output-prefix', prefix, '--vocab-size', '20', '--quiet']), /too small for the \d+ characters this text needs; use at least \d+/);
  assert.deepEqual(outputsOf(prefix), []);
});

test('existing outputs are refused without --force and replaced with it', () => {
  const prefix = path.join(dir, 'out-exists');
  fs.writeFileSync(`${prefix}.model`, 'keep me');
  oneLineError(runCli('train-tokenizer', ['--input', quiz, '--output-prefix', prefix, '--vocab-size', '500', '--quiet']), /out-exists\.model already exists; .*--force/);
  assert.equal(fs.readFileSync(`${prefix}.model`, 'utf8'), 'keep me');
  const r = runCli('train-tokenizer', ['--input', quiz, '--output-prefix', prefix, '--vocab-size', '500', '--quiet', '--force']);
  assert.equal(r.status, 0, r.stderr);
  assert.notEqual(fs.readFileSync(`${prefix}.model`, 'utf8'), 'keep me');
});

test('loadTokenizer: a missing, garbage, truncated or empty model is a UserError naming the file', async () => {
  const good = path.join(dir, 'good');
  assert.equal(runCli('train-tokenizer', ['--input', quiz, '--output-prefix', good, '--vocab-size', '500', '--quiet']).status, 0);
  const bytes = fs.readFileSync(`${good}.model`);
  const cases: Array<[string, Buffer | null, RegExp]> = [
    ['missing.model', null, /missing\.model: tokenizer model file not found/],
    ['garbage.model', Buffer.from('this is not a protobuf at all, just text\n'.repeat(50)), /garbage\.model: not a (valid )?SentencePiece model/],
    ['truncated.model', bytes.subarray(0, Math.floor(bytes.length / 2)), /truncated\.model: not a SentencePiece model/],
    ['empty.model', Buffer.alloc(0), /empty\.model: tokenizer model file is empty/],
  ];
  for (const [name, content, pattern] of cases) {
    const file = path.join(dir, name);
    if (content) fs.writeFileSync(file, content);
    await assert.rejects(loadTokenizer(file), (err: unknown) => err instanceof UserError && pattern.test(err.message) && !err.message.includes('\n'));
  }
  const tok = await loadTokenizer(`${good}.model`);
  assert.ok(tok.encode('What is the capital of France?').length > 0);
});
