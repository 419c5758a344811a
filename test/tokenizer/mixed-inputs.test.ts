/** Several --input files, Q&A and plain text mixed: one tokenizer for pretraining and fine-tuning, with Q&A mode's specials and "\n" piece. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readQaFile } from '../../src/convert/qa-format.js';
import { decodeModelProto, PieceType } from '../../src/tokenizer/model-proto.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainTokenizer } from '../../src/tokenizer/train.js';
import { referenceDir, tempDir } from '../helpers.js';

const dir = tempDir('gptmed-mixed-inputs-');
const pythonFaq = path.join(referenceDir, 'python-faq.qa.txt');
/** The first speeches of sotu-1mb.txt (one speech a line, blank lines between), about 200 KB. */
const plain = path.join(dir, 'sotu.txt');
const sotu = fs.readFileSync(path.join(referenceDir, 'sotu-1mb.txt'), 'utf8');
fs.writeFileSync(plain, sotu.slice(0, sotu.indexOf('\n', 200_000) + 1));

test('a Q&A file and a plain-text file: both encode, the special ids are a Q&A-only model\'s, "\\n" is a piece', async () => {
  const mixed = await trainTokenizer({ input: [pythonFaq, plain], outputPrefix: path.join(dir, 'mixed'), vocabSize: 2000, quiet: true });
  const qaOnly = await trainTokenizer({ input: pythonFaq, outputPrefix: path.join(dir, 'qa'), vocabSize: 1500, quiet: true });
  assert.equal(mixed.mode, 'qa');
  assert.equal(mixed.pairs, 178);
  assert.ok(mixed.lines > 5, `the speeches are trained on (${mixed.lines} lines)`);
  const tok = await loadTokenizer(mixed.modelPath);
  const qaTok = await loadTokenizer(qaOnly.modelPath);
  assert.deepEqual(tok.specialIds, qaTok.specialIds);
  const model = decodeModelProto(fs.readFileSync(mixed.modelPath));
  assert.deepEqual(model.trainerSpec?.input, [pythonFaq, plain]);
  const newline = model.pieces.findIndex((p) => p.piece === '\n');
  assert.equal(model.pieces[newline].type, PieceType.USER_DEFINED);
  assert.deepEqual(tok.encode('a\nb').filter((id) => id === newline), [newline]);
  // Both kinds of text round-trip (NFKC, as the normalizer reads them).
  for await (const pair of readQaFile(pythonFaq)) assert.equal(tok.decode(tok.encode(pair.answer)), pair.answer.normalize('NFKC').replace(/\t/g, ' '));
  const speech = fs.readFileSync(plain, 'utf8').split('\n')[0];
  assert.equal(tok.decode(tok.encode(speech)), speech.normalize('NFKC'));
  // The speeches' words are in the vocabulary, not only the FAQ's.
  assert.ok(tok.encode('Fellow-Citizens of the Senate and House of Representatives').length < 15);
});

test('several plain-text files alone stay SentencePiece plain mode (no pad), as spm_train --input=a,b', async () => {
  const r = await trainTokenizer({ input: [plain, plain], outputPrefix: path.join(dir, 'plain2'), vocabSize: 1000, maxSentenceLength: 100_000, quiet: true });
  assert.equal(r.mode, 'text');
  const tok = await loadTokenizer(r.modelPath);
  assert.deepEqual(tok.specialIds, { pad: -1, unk: 0, bos: 1, eos: 2 });
});

test('a file among several that has nothing to train on is named', async () => {
  const empty = path.join(dir, 'blank.txt');
  fs.writeFileSync(empty, '\n\n\n');
  await assert.rejects(trainTokenizer({ input: [pythonFaq, empty], outputPrefix: path.join(dir, 'bad'), vocabSize: 1500, quiet: true }), (err: Error) => {
    assert.match(err.message, /blank\.txt: no text to train on/);
    return true;
  });
  assert.ok(!fs.existsSync(path.join(dir, 'bad.model')));
});
