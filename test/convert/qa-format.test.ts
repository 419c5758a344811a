import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { formatQa, formatQaPair, parseQa, readQaFile, type MalformedBlock, type QaPair } from '../../src/convert/qa-format.js';
import { UserError } from '../../src/common/errors.js';
import { repoRoot, tempDir } from '../helpers.js';

const samplePath = path.join(repoRoot, 'data', 'sample.qa.txt');

test('multi-line answers keep their paragraphs; pairs end at a blank line before Q:', () => {
  const text = 'Q: What is 2+2?\nA: Four.\n\nQ: And a poem?\nA: Roses are red,\n\nviolets are blue.\n\n\nQ: Last?\nA: Yes.\n';
  const { pairs, malformed } = parseQa(text);
  assert.deepEqual(malformed, []);
  assert.deepEqual(pairs, [
    { question: 'What is 2+2?', answer: 'Four.' },
    { question: 'And a poem?', answer: 'Roses are red,\n\nviolets are blue.' },
    { question: 'Last?', answer: 'Yes.' },
  ]);
});

test('CRLF, a UTF-8 BOM and trailing spaces are accepted', () => {
  const text = '\uFEFFQ: First?  \r\nA: One   \r\ntwo\t\r\n\r\nQ: Second?\r\nA: Three\r\n';
  assert.deepEqual(parseQa(text).pairs, [
    { question: 'First?', answer: 'One\ntwo' },
    { question: 'Second?', answer: 'Three' },
  ]);
});

test('an answer line that begins with Q: is written with one leading space and read back unchanged', () => {
  const pair: QaPair = { question: 'How do I write a quiz?', answer: 'Like this:\n\nQ: a question\nA: its answer\n  Q: indented' };
  const text = formatQaPair(pair);
  assert.match(text, /\n Q: a question\n A: its answer\n   Q: indented\n/);
  assert.deepEqual(parseQa(text), { pairs: [pair], malformed: [] });
});

test('malformed blocks are reported with their line numbers; lenient mode skips them', () => {
  const text = [
    'Q: good one?', 'A: yes', '', // 1-3
    'Q: no answer here', '', // 4-5
    'A: an answer without a question', '', // 6-7
    'Q:', 'A: empty question', '', // 8-10
    'Q: empty answer?', 'A:', '', // 11-13
    'Q: fine again?', 'A: yes', // 14-15
  ].join('\n');
  const { pairs, malformed } = parseQa(text);
  assert.deepEqual(pairs.map((p) => p.question), ['good one?', 'fine again?']);
  assert.deepEqual(malformed, [
    { line: 4, reason: 'question (Q:) without an answer (A:)' },
    { line: 6, reason: 'answer (A:) without a question (Q:) before it' },
    { line: 8, reason: 'empty question' },
    { line: 11, reason: 'empty answer' },
  ]);
});

test('strict mode fails on the first malformed block, naming the file and line', () => {
  assert.throws(
    () => parseQa('Q: fine?\nA: yes\n\nQ: lonely\n', { strict: true, source: 'faq.qa.txt' }),
    (err: unknown) => err instanceof UserError && /^faq\.qa\.txt:4: question \(Q:\) without an answer/.test(err.message),
  );
});

test('blank lines inside a question are removed, since a blank line ends a question', () => {
  const text = formatQaPair({ question: 'First line\n\n\nsecond line', answer: 'ok' });
  assert.deepEqual(parseQa(text), { pairs: [{ question: 'First line\nsecond line', answer: 'ok' }], malformed: [] });
});

test('round trip on the bundled sample: parse(write(pairs)) equals pairs, and the sample has no malformed block', () => {
  const { pairs, malformed } = parseQa(fs.readFileSync(samplePath, 'utf8'));
  assert.deepEqual(malformed, []);
  assert.equal(pairs.length, 1726);
  // The FAQs' answers span lines and carry indented code: the round trip must keep them exactly.
  assert.ok(pairs.filter((p) => p.answer.includes('\n')).length > 250);
  assert.ok(pairs.some((p) => /\n {3,}\S/.test(p.answer)));
  const again = parseQa(formatQa(pairs));
  assert.deepEqual(again.malformed, []);
  assert.deepEqual(again.pairs, pairs);
});

test('readQaFile streams the same pairs as parseQa and reports skipped blocks', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'mixed.qa.txt');
  fs.writeFileSync(file, `${fs.readFileSync(samplePath, 'utf8')}A: stray answer\n\nQ: last?\nA: yes\n`);
  const seen: MalformedBlock[] = [];
  const streamed: QaPair[] = [];
  for await (const p of readQaFile(file, { onMalformed: (m) => seen.push(m) })) streamed.push(p);
  const whole = parseQa(fs.readFileSync(file, 'utf8'));
  assert.deepEqual(streamed, whole.pairs);
  assert.equal(streamed.length, 1727);
  assert.deepEqual(seen, whole.malformed);
  assert.equal(seen.length, 1);
});

test('readQaFile reads CRLF, a BOM, multi-byte characters across its 1 MB reads, and a last line without a newline, as parseQa does', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'crlf.qa.txt');
  // Over 1 MB, so lines and UTF-8 characters straddle the reads; no newline at the end.
  const body = `${fs.readFileSync(samplePath, 'utf8')}Q: Café — naïve?\nA: Ünïcödé ✓ 日本語\n\n`.repeat(3).replace(/\n/g, '\r\n');
  const text = `\ufeff${body}Q: last?\r\nA: no newline`;
  fs.writeFileSync(file, text);
  assert.ok(Buffer.byteLength(text) > 1 << 20);
  const streamed: QaPair[] = [];
  for await (const p of readQaFile(file)) streamed.push(p);
  const whole = parseQa(text);
  assert.equal(streamed.length, 3 * 1727 + 1);
  assert.deepEqual(streamed, whole.pairs);
  assert.equal(streamed[0].question, parseQa(fs.readFileSync(samplePath, 'utf8')).pairs[0].question, 'the BOM is not part of the first question');
  assert.deepEqual(streamed[streamed.length - 1], { question: 'last?', answer: 'no newline' });
  assert.ok(streamed.some((p) => p.answer === 'Ünïcödé ✓ 日本語'));
});
