/**
 * gptmed-tokenize --input-format text: plain-text documents (a file, or a directory of .txt files) packed back
 * to back, split by document, read by NumPy and trained on. Runs the built CLI (`npm run build` first).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readShardsMeta } from '../../src/dataset/shards.js';
import { assignSplits } from '../../src/dataset/tokenize.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainTokenizer } from '../../src/tokenizer/train.js';
import { runCli, referenceDir, tempDir } from '../helpers.js';
import { lossCurve, runFlags, train } from '../train/run-helpers.js';

const dir = tempDir('gptmed-text-input-');
const pythonFaq = path.join(referenceDir, 'python-faq.qa.txt');
/** The first ~300 KB of ../shared/data/corpus/sotu.txt (sotu-1mb.txt is its first MiB): speeches one a line, blank lines between. */
const corpus = path.join(dir, 'sotu.txt');
const sotu = fs.readFileSync(path.join(referenceDir, 'sotu-1mb.txt'), 'utf8');
fs.writeFileSync(corpus, sotu.slice(0, sotu.indexOf('\n', 300_000) + 1));
const model = path.join(dir, 'both.model');
const ready = trainTokenizer({ input: [pythonFaq, corpus], outputPrefix: path.join(dir, 'both'), vocabSize: 1500, quiet: true });

function tokenize(input: string, out: string, extra: string[] = []): ReturnType<typeof runCli> {
  return runCli('tokenize', ['--input', input, '--tokenizer', model, '--output-dir', out, '--max-length', '64', '--quiet', ...extra]);
}

/** The uint16 ids of a shard of `rows` rows of 64 (the data ends the file, after npy's header). */
function npyData(file: string, rows: number): Uint16Array {
  const npy = fs.readFileSync(file);
  return new Uint16Array(npy.buffer.slice(npy.byteOffset + npy.length - rows * 64 * 2, npy.byteOffset + npy.length));
}

/** NumPy's view of the shards: dtype, range, every document <s> ... </s> in the stream, train and val disjoint. */
const numpyCheck = `
import json, sys, numpy as np
d = sys.argv[1]
meta = json.load(open(d + "/meta.json"))
ids = meta["specialIds"]
docs = {}
for split in ("train", "val"):
    a = np.load(d + "/" + split + ".npy")
    assert a.dtype == np.uint16 and a.ndim == 2 and a.shape[1] == 64, (a.dtype, a.shape)
    assert a.min() >= 0 and a.max() < meta["vocabSize"]
    s = a.reshape(-1).astype(np.int64)
    n = len(s)
    while n > 0 and s[n - 1] == ids["pad"]: n -= 1
    s = s[:n]
    assert (s == ids["pad"]).sum() == 0, "pad only after the last document"
    starts = np.flatnonzero(s == ids["bos"])
    ends = np.flatnonzero(s == ids["eos"])
    assert len(starts) == len(ends) == meta["splits"][split]["pairs"]
    assert starts[0] == 0 and ends[-1] == n - 1 and (starts[1:] == ends[:-1] + 1).all(), "documents back to back, <s> ... </s>"
    docs[split] = set(tuple(s[b:e + 1]) for b, e in zip(starts, ends))
assert not docs["train"] & docs["val"], "a document in both splits"
print(len(docs["train"]), len(docs["val"]))
`;

test('a text file: documents <s> ... </s> back to back in rows, split by document with the seed, byte-identical again, NumPy reads it, gptmed-train trains on it', async () => {
  await ready;
  const out = path.join(dir, 'text');
  const r = tokenize(corpus, out, ['--input-format', 'text', '--seed', '7', '--train-split', '0.8']);
  assert.equal(r.status, 0, r.stderr);
  const meta = readShardsMeta(out);
  assert.equal(meta.inputFormat, 'text');
  assert.equal(meta.promptMasked, false);
  assert.ok(meta.packingEfficiency > 0.99, `rows are full but the last (${meta.packingEfficiency})`);

  // The rows are exactly each split's documents in file order, [bos, ...encode(text), eos], cut only by the row width.
  const tok = await loadTokenizer(model);
  const docs = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l.trim() !== '');
  assert.equal(meta.pairs, docs.length);
  const splitOf = assignSplits(docs.length, 0.8, 0, 7);
  (['train', 'val'] as const).forEach((name, k) => {
    const stream = docs.filter((_, i) => splitOf[i] === k).flatMap((d) => [tok.specialIds.bos, ...tok.encode(d), tok.specialIds.eos]);
    const data = npyData(path.join(out, `${name}.npy`), meta.splits[name].rows);
    assert.deepEqual(Array.from(data.subarray(0, stream.length)), stream, `${name} holds its documents, packed`);
    assert.ok(data.subarray(stream.length).every((t) => t === tok.specialIds.pad) && data.length - stream.length < 64, 'only the last row is padded');
  });

  const py = spawnSync('/usr/bin/python3', ['-c', numpyCheck, out], { encoding: 'utf8' });
  assert.equal(py.status, 0, `NumPy check failed (apt-get install python3-numpy): ${py.stderr}`);
  assert.equal(py.stdout.trim(), `${meta.splits.train.pairs} ${meta.splits.val.pairs}`);

  // The same seed gives the same bytes.
  const again = path.join(dir, 'text-again');
  assert.equal(tokenize(corpus, again, ['--input-format', 'text', '--seed', '7', '--train-split', '0.8']).status, 0);
  for (const f of ['train.npy', 'val.npy', 'meta.json']) assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(again, f))), `${f} differs between two runs`);

  const run = path.join(dir, 'run');
  const shards = { dir: out, train: path.join(out, 'train.npy'), val: path.join(out, 'val.npy'), tokenizer: model };
  const t = train(runFlags(shards, run, { 'max-steps': 10 }));
  assert.equal(t.status, 0, t.stderr);
  const losses = [...lossCurve(run).values()];
  assert.ok(losses.length > 0 && losses.every(Number.isFinite), `finite losses: ${losses}`);
});

test('a directory of .txt files: one document each, in name order; auto detects plain text; an old meta.json reads as Q&A', async () => {
  await ready;
  const directory = path.join(dir, 'docs');
  fs.mkdirSync(directory);
  const texts = ['First document.\n\nIts second paragraph.\n', 'Second one,\n    indented.', 'Third.', 'Fourth and last.'];
  texts.forEach((t, i) => fs.writeFileSync(path.join(directory, `${String.fromCharCode(100 - i)}.txt`), `\n${t}\n\n`));
  fs.writeFileSync(path.join(directory, 'notes.md'), 'not a document');
  fs.writeFileSync(path.join(directory, 'empty.txt'), '');
  const out = path.join(dir, 'directory');
  const r = tokenize(directory, out, ['--input-format', 'auto', '--train-split', '0.5']);
  assert.equal(r.status, 0, r.stderr);
  const meta = readShardsMeta(out);
  assert.equal(meta.inputFormat, 'text');
  assert.equal(meta.pairs, 4);
  const tok = await loadTokenizer(model);
  // Name order: a.txt (texts[3]), b.txt, c.txt, d.txt (texts[0]).
  const inOrder = [...texts].reverse().map((t) => t.replace(/\n+$/, ''));
  const splitOf = assignSplits(4, 0.5, 0, 42);
  const want = inOrder.filter((_, i) => splitOf[i] === 0).flatMap((d) => [tok.specialIds.bos, ...tok.encode(d), tok.specialIds.eos]);
  const data = npyData(path.join(out, 'train.npy'), meta.splits.train.rows);
  assert.deepEqual(Array.from(data.subarray(0, want.length)), want);

  // meta.json from before the field: Q&A shards.
  const old = JSON.parse(fs.readFileSync(path.join(out, 'meta.json'), 'utf8'));
  delete old.inputFormat;
  fs.writeFileSync(path.join(out, 'meta.json'), JSON.stringify(old));
  assert.equal(readShardsMeta(out).inputFormat, 'qa');
});

test('bad plain-text input: one line each, nothing written', async () => {
  await ready;
  const noTxt = path.join(dir, 'no-txt');
  fs.mkdirSync(noTxt);
  fs.writeFileSync(path.join(noTxt, 'a.md'), 'text');
  const blank = path.join(dir, 'blank.txt');
  fs.writeFileSync(blank, '\n   \n\n');
  const latin1 = path.join(dir, 'latin1.txt');
  fs.writeFileSync(latin1, Buffer.from('Caf\xe9 au lait.\n', 'latin1'));
  const cases: Array<[string[], RegExp]> = [
    [[corpus, '--input-format', 'text', '--mask-prompt'], /--mask-prompt marks the answers of Q&A pairs, and plain text .* has none/],
    [[corpus, '--input-format', 'auto', '--mask-prompt'], /--mask-prompt marks the answers of Q&A pairs/],
    [[corpus, '--input-format', 'text', '--stride', '32'], /--stride cuts Q&A pairs/],
    [[noTxt, '--input-format', 'text'], /no-txt: the directory holds no \.txt files/],
    [[noTxt], /no-txt: is a directory; for a directory of \.txt documents give --input-format text/],
    [[blank, '--input-format', 'text'], /blank\.txt: no documents found/],
    [[latin1, '--input-format', 'text'], /latin1\.txt:1: invalid UTF-8 at byte 3/],
    [[corpus], /no Q&A pairs found; .* or for plain text --input-format text/],
    [[path.join(dir, 'missing.txt'), '--input-format', 'auto'], /missing\.txt: input file not found/],
  ];
  for (const [[input, ...flags], message] of cases) {
    const out = path.join(dir, 'refused');
    const r = tokenize(input, out, flags);
    assert.notEqual(r.status, 0, `${flags.join(' ')}: refused`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.ok(!fs.existsSync(out), 'nothing written');
  }
});
