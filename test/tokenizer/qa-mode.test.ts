/** Q&A mode: the pair is the unit, specials at fixed ids, newlines and indentation survive, Q:/A: are stable. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readQaFile } from '../../src/convert/qa-format.js';
import { decodeModelProto, PieceType } from '../../src/tokenizer/model-proto.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainTokenizer } from '../../src/tokenizer/train.js';
import { referenceDir, tempDir } from '../helpers.js';

const dir = tempDir('gptmed-qa-mode-');
const pythonFaq = path.join(referenceDir, 'python-faq.qa.txt');
const prefix = path.join(dir, 'qa');
const trained = trainTokenizer({ input: pythonFaq, outputPrefix: prefix, vocabSize: 1500, quiet: true });

test('Q&A text is detected, trained per pair, with pad/unk/bos/eos at 0-3 and "\\n" as one piece', async () => {
  const r = await trained;
  assert.equal(r.mode, 'qa');
  assert.equal(r.sentences, 178);
  const model = decodeModelProto(fs.readFileSync(`${prefix}.model`));
  assert.deepEqual(
    model.pieces.slice(0, 5).map((p) => [p.piece, p.type]),
    [['<pad>', PieceType.CONTROL], ['<unk>', PieceType.UNKNOWN], ['<s>', PieceType.CONTROL], ['</s>', PieceType.CONTROL], ['\n', PieceType.USER_DEFINED]],
  );
  const tok = await loadTokenizer(`${prefix}.model`);
  assert.deepEqual(tok.specialIds, { pad: 0, unk: 1, bos: 2, eos: 3 });
  assert.equal(tok.vocabSize, 1500);
  assert.equal(tok.decode([2, ...tok.encode('Why?'), 3, 0, 0]), 'Why?');
});

test('every answer decodes back to itself (NFKC, tabs as spaces): newlines, blank lines and indentation survive', async () => {
  await trained;
  const tok = await loadTokenizer(`${prefix}.model`);
  let withNewlines = 0;
  let indented = 0;
  for await (const pair of readQaFile(pythonFaq)) {
    const want = pair.answer.normalize('NFKC').replace(/\t/g, ' ');
    assert.equal(tok.decode(tok.encode(pair.answer)), want);
    if (pair.answer.includes('\n')) withNewlines++;
    if (/\n {4}\S/.test(pair.answer)) indented++;
  }
  assert.ok(withNewlines > 10 && indented > 10, `the data should exercise newlines (${withNewlines}) and indentation (${indented})`);
  const blankLines = 'First paragraph.\n\n    indented code()\n\nLast.';
  assert.equal(tok.decode(tok.encode(blankLines)), blankLines);
});

test('"Q:" and "A:" tokenize the same at the start of the text and after a newline', async () => {
  await trained;
  const tok = await loadTokenizer(`${prefix}.model`);
  const nl = tok.encode('\n')[0];
  const start = tok.encode('Q: How?');
  const afterNewline = tok.encode('x\nQ: How?');
  assert.deepEqual(afterNewline.slice(afterNewline.indexOf(nl) + 1), start);
  const a = tok.encode('A: yes');
  const aAfter = tok.encode('Q: How?\nA: yes');
  assert.deepEqual(aAfter.slice(aAfter.indexOf(nl) + 1), a);
});

test('a pair longer than spm_train\'s 4192-byte limit is trained on, not dropped; an explicit limit reports what it skips', async () => {
  const input = path.join(dir, 'long.qa.txt');
  const longAnswer = Array.from({ length: 700 }, (_, i) => `zyxword${i % 7} line`).join('\n');
  fs.writeFileSync(input, `${fs.readFileSync(pythonFaq, 'utf8')}\nQ: What is the long one?\nA: ${longAnswer}\n`);
  const r = await trainTokenizer({ input, outputPrefix: path.join(dir, 'long'), vocabSize: 1500, quiet: true });
  assert.equal(r.sentences, 179);
  assert.match(fs.readFileSync(path.join(dir, 'long.vocab'), 'utf8'), /^zyxword\t/m);
  const warnings: string[] = [];
  const limited = await trainTokenizer({ input, outputPrefix: path.join(dir, 'limited'), vocabSize: 1500, maxSentenceLength: 4192, quiet: true, warn: (m) => warnings.push(m) });
  assert.equal(limited.sentences + limited.skippedTooLong, 179);
  assert.ok(limited.skippedTooLong >= 1);
  assert.match(warnings.join('\n'), /pairs longer than 4192 bytes skipped/);
});
