/** PairEncoder: tokenize's fast encodePair over many pairs, and the model check that allows it. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readQaFile, type QaPair } from '../../src/convert/qa-format.js';
import { encodePair } from '../../src/dataset/framing.js';
import { PairEncoder, wordSplitNewlineId } from '../../src/dataset/pair-encoder.js';
import { decodeModelProto, nmtNfkcCharsmap, PieceType, type ModelProto } from '../../src/tokenizer/model-proto.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainTokenizer } from '../../src/tokenizer/train.js';
import { repoRoot, referenceDir, tempDir } from '../helpers.js';

const dir = tempDir('gptmed-pair-encoder-');
const qaFiles = ['bsdgames-quiz.qa.txt', 'python-faq.qa.txt', 'debian-faq.qa.txt'].map((f) => path.join(referenceDir, f));

async function pairsOf(file: string): Promise<QaPair[]> {
  const out: QaPair[] = [];
  for await (const p of readQaFile(file)) out.push(p);
  return out;
}

test('PairEncoder, encoding each distinct word once, gives exactly encodePair\'s ids on data/sample.qa.txt and three real files, with a memo of any size', async () => {
  const sample = path.join(repoRoot, 'data', 'sample.qa.txt');
  const models = [
    { name: 'nmt', input: qaFiles[1], vocabSize: 1000 },
    // Unseen characters become byte pieces: words with unknown characters are cut alike.
    { name: 'identity', input: sample, vocabSize: 800, normalization: 'identity' as const, byteFallback: true, characterCoverage: 0.98 },
  ];
  const files = [sample, ...qaFiles];
  const pairsPerFile = await Promise.all(files.map(pairsOf));
  // " hkzlea" and " xabaab" have the same 32-bit FNV-1a hash and length: the memo must tell them apart by their characters.
  files.push('two words whose hashes collide');
  pairsPerFile.push([
    { question: 'hkzlea xabaab?', answer: 'xabaab hkzlea xabaab' },
    { question: 'xabaab hkzlea?', answer: 'hkzlea\nxabaab hkzlea' },
  ]);
  for (const m of models) {
    const prefix = path.join(dir, `words-${m.name}`);
    await trainTokenizer({ ...m, outputPrefix: prefix, quiet: true });
    const tok = await loadTokenizer(`${prefix}.model`);
    const newlineId = wordSplitNewlineId(decodeModelProto(fs.readFileSync(`${prefix}.model`)));
    assert.equal(newlineId, 4, `${m.name}: a Q&A model may be encoded word by word`);
    // The second encoder's memo holds 64 words, so it starts afresh between most batches.
    const encoders = [new PairEncoder(tok, newlineId), new PairEncoder(tok, newlineId, 64)];
    files.forEach((file, f) => {
      const pairs = pairsPerFile[f];
      for (let first = 0; first < pairs.length; first += 256) {
        const batch = pairs.slice(first, first + 256);
        for (const got of encoders.map((encoder) => encoder.encode(batch))) {
          let at = 0;
          batch.forEach((pair, k) => {
            const want = encodePair(tok, pair);
            assert.deepEqual(Array.from(got.ids.subarray(at, at + got.lengths[k])), want.ids, `${m.name}, ${file}: ${pair.question}`);
            assert.equal(got.answerStarts[k], want.answerStart);
            at += got.lengths[k];
          });
          assert.equal(at, got.ids.length);
        }
      }
    });
  }
  assert.ok(pairsPerFile.reduce((n, p) => n + p.length, 0) > 3400);
});

test('wordSplitNewlineId refuses models that may segment across a space or a newline', async () => {
  const prefix = path.join(dir, 'refuse');
  await trainTokenizer({ input: qaFiles[0], outputPrefix: prefix, vocabSize: 300, quiet: true });
  const base = decodeModelProto(fs.readFileSync(`${prefix}.model`));
  assert.equal(wordSplitNewlineId(base), 4);
  const variant = (change: (m: ModelProto) => void): number | null => {
    const m = structuredClone(base);
    change(m);
    return wordSplitNewlineId(m);
  };
  assert.equal(variant((m) => (m.normalizerSpec!.addDummyPrefix = true)), null, 'dummy prefix');
  assert.equal(variant((m) => delete m.normalizerSpec!.removeExtraWhitespaces), null, 'whitespace trimming (the default)');
  assert.equal(variant((m) => (m.trainerSpec!.treatWhitespaceAsSuffix = true)), null, 'whitespace as suffix');
  assert.equal(variant((m) => (m.normalizerSpec!.precompiledCharsmap = nmtNfkcCharsmap().subarray(1))), null, 'an unknown charsmap');
  assert.equal(variant((m) => (m.pieces[4].type = PieceType.NORMAL)), null, '"\\n" not user-defined');
  assert.equal(variant((m) => m.pieces.push({ piece: 'a\u2581b', score: -1e6 })), null, 'a piece across a space');
  assert.equal(variant((m) => m.pieces.push({ piece: 'x\ny', score: -1e6 })), null, 'a piece across a newline');
  assert.equal(variant((m) => (m.pieces = m.pieces.filter((p) => p.piece !== '\u2581'))), null, 'no "▁" piece');
  assert.equal(variant((m) => (m.trainerSpec!.modelType = 1)), null, 'unigram');
});

test('no rule of SentencePiece\'s nmt_nfkc table reads a space or a newline past its first byte', () => {
  // The table is a Darts-clone double array: walk every key and look at its bytes.
  const blob = nmtNfkcCharsmap();
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const units = new Uint32Array(view.getUint32(0, true) / 4).map((_, i) => view.getUint32(4 + 4 * i, true));
  const offset = (unit: number): number => (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
  let keys = 0;
  const crossing: string[] = [];
  const walk = (base: number, key: number[]): void => {
    for (let c = 1; c < 256; c++) {
      const node = base ^ c;
      const unit = units[node];
      if (unit === undefined || (unit & 0x800000ff) !== c) continue;
      const next = [...key, c];
      if ((unit >>> 8) & 1) {
        keys++;
        if (next.slice(1).some((b) => b === 0x20 || b === 0x0a)) crossing.push(Buffer.from(next).toString('hex'));
      }
      walk(node ^ offset(unit), next);
    }
  };
  walk(offset(units[0]), []);
  assert.ok(keys > 5000, `walked ${keys} rules`);
  assert.deepEqual(crossing, []);
});

test('encodeDocuments gives [bos, ...encode(text), eos] per document, word by word or whole, newlines and indentation kept', async () => {
  const prefix = path.join(dir, 'documents');
  const speeches = path.join(dir, 'speeches.txt');
  const sotu = fs.readFileSync(path.join(referenceDir, 'sotu-1mb.txt'), 'utf8');
  fs.writeFileSync(speeches, sotu.slice(0, sotu.indexOf('\n', 100_000) + 1));
  await trainTokenizer({ input: [qaFiles[1], speeches], outputPrefix: prefix, vocabSize: 1200, quiet: true });
  const tok = await loadTokenizer(`${prefix}.model`);
  const newlineId = wordSplitNewlineId(tok.model);
  assert.equal(newlineId, 4);
  const docs = [...sotu.slice(0, 300_000).split('\n').filter((l) => l.trim() !== ''), 'Line one.\n\n    indented()\nQ: not a pair', 'x'];
  const { bos, eos } = tok.specialIds;
  const want = docs.map((d) => [bos, ...tok.encode(d), eos].join(' '));
  for (const encoder of [new PairEncoder(tok, newlineId), new PairEncoder(tok, newlineId, 64), new PairEncoder(tok, null)]) {
    const got = encoder.encodeDocuments(docs);
    let at = 0;
    const each = Array.from(got.lengths, (n) => Array.from(got.ids.subarray(at, (at += n))).join(' '));
    assert.deepEqual(each, want);
    assert.deepEqual(Array.from(got.answerStarts), Array.from(got.lengths, (n) => n - 1));
  }
});
