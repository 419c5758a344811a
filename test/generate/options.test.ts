import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { SettingError } from '../../src/common/settings.js';
import { generateConfig, PRESET_NAMES, resolveOptions } from '../../src/generate/options.js';
import { parseQuestions, readQuestionFile } from '../../src/generate/questions.js';
import { fixturesDir, tempDir } from '../helpers.js';

test("defaults are gptmed's: temperature 0.8, top-k 50, top-p 0.95, penalty 1.2, no-repeat 3", () => {
  const o = resolveOptions();
  assert.deepEqual(
    [o.temperature, o.topK, o.topP, o.repetitionPenalty, o.noRepeatNgram],
    [0.8, 50, 0.95, 1.2, 3],
  );
});

test('a preset overrides the defaults and explicit options override the preset', () => {
  for (const name of PRESET_NAMES) {
    const o = resolveOptions({ preset: name });
    assert.equal(o.temperature, generateConfig().presets[name].temperature);
  }
  assert.equal(resolveOptions({ preset: 'greedy' }).temperature, 0);
  const o = resolveOptions({ preset: 'greedy', temperature: 0.7, topK: undefined });
  assert.equal(o.temperature, 0.7);
  assert.equal(o.topK, generateConfig().presets.greedy.topK, 'undefined leaves the preset value');
});

test('an option out of range is a SettingError naming the field (the CLI names the flag)', () => {
  const cases: Array<[Parameters<typeof resolveOptions>[0], RegExp]> = [
    [{ temperature: -1 }, /temperature must be a number >= 0 \(got -1\)/],
    [{ topK: 2.5 }, /topK must be a non-negative integer/],
    [{ topP: 0 }, /topP must be in \(0, 1\]/],
    [{ topP: 1.5 }, /topP/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty/],
    [{ noRepeatNgram: -2 }, /noRepeatNgram/],
    [{ maxNewTokens: 0 }, /maxNewTokens must be a positive integer/],
    [{ numSamples: 0 }, /numSamples/],
    [{ preset: 'wild' as 'greedy' }, /preset must be one of greedy, balanced, creative, conservative/],
  ];
  for (const [req, msg] of cases) {
    assert.throws(
      () => resolveOptions(req),
      (e: unknown) => e instanceof SettingError && e.given && e.exitCode === 2 && /^generation options: /.test(e.message) && msg.test(e.message),
    );
  }
});

test('--input-file: one question a line, blanks and stray spaces ignored', () => {
  const q = readQuestionFile(path.join(fixturesDir, 'generate', 'questions.txt'));
  assert.equal(q.format, 'lines');
  assert.deepEqual(q.questions.map((x) => x.question), ['African: Algeria -- capital?', 'African: Chad -- capital?', 'What is the capital of Peru?']);
});

test('--input-file: Q&A text gives questions with their references, and names skipped blocks', () => {
  const q = readQuestionFile(path.join(fixturesDir, 'generate', 'quiz.qa.txt'));
  assert.equal(q.format, 'qa');
  assert.equal(q.questions.length, 48);
  assert.deepEqual(q.questions[0], { question: 'African: Algeria -- capital?', reference: 'Algiers' });
  const mixed = parseQuestions('Q: first?\nA: one\n\nQ: no answer here\n\nQ: third?\nA: three\n', 'mixed.txt');
  assert.deepEqual(mixed.questions.map((x) => x.question), ['first?', 'third?']);
  assert.deepEqual(mixed.skipped, ['line 4: question (Q:) without an answer (A:)']);
});

test('--input-file: an empty or binary file is a one-line UserError', () => {
  const dir = tempDir();
  const empty = path.join(dir, 'empty.txt');
  fs.writeFileSync(empty, '');
  assert.throws(() => readQuestionFile(empty), /empty\.txt: questions file is empty/);
  assert.throws(() => parseQuestions('\n  \n', 'blank.txt'), /blank\.txt: holds no question/);
  const bin = path.join(dir, 'model.bin');
  fs.writeFileSync(bin, Buffer.from([1, 0, 2, 0]));
  assert.throws(() => readQuestionFile(bin), /binary/);
});
