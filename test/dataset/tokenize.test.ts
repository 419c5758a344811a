/**
 * gptmed-tokenize end to end on real Q&A text, and the shard reader. Tokenizing
 * runs the built CLI (dist/, `npm run build` first): its encode workers load
 * dist/dataset/encode-worker.js, and a worker started from source under tsx
 * would not have tsx (Node 20 does not run --import modules in workers).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../src/common/errors.js';
import { readQaFile, type QaPair } from '../../src/convert/qa-format.js';
import { encodePair } from '../../src/dataset/framing.js';
import { loadTokenRows, readShardsMeta, type ShardsMeta, type TokenRows } from '../../src/dataset/shards.js';
import { assignSplits } from '../../src/dataset/tokenize.js';
import { decodeModelProto, encodeModelProto } from '../../src/tokenizer/model-proto.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainTokenizer } from '../../src/tokenizer/train.js';
import { runCli, referenceDir, tempDir } from '../helpers.js';

const dir = tempDir('gptmed-tokenize-');
const quiz = path.join(referenceDir, 'bsdgames-quiz.qa.txt');
const pythonFaq = path.join(referenceDir, 'python-faq.qa.txt');
const model = path.join(dir, 'tok.model');
const ready = trainTokenizer({ input: pythonFaq, outputPrefix: path.join(dir, 'tok'), vocabSize: 1000, quiet: true });

async function pairsOf(file: string): Promise<QaPair[]> {
  const out: QaPair[] = [];
  for await (const p of readQaFile(file)) out.push(p);
  return out;
}

/** The pairs packed in rows, as id lists: split at bos, pad dropped (rows of unsplit pairs only). */
function pairsInRows(rows: TokenRows): string[] {
  const { bos, pad } = rows.meta.specialIds;
  const out: string[] = [];
  for (let r = 0; r < rows.rows; r++) {
    const row = Array.from(rows.tokens.subarray(r * rows.seqLen, (r + 1) * rows.seqLen)).filter((t) => t !== pad);
    let cur: number[] = [];
    for (const t of row) {
      if (t === bos && cur.length > 0) {
        out.push(cur.join(' '));
        cur = [];
      }
      cur.push(t);
    }
    if (cur.length > 0) out.push(cur.join(' '));
  }
  return out;
}

test('the CLI writes train/val/test shards that NumPy loads; the split is by pair, seeded, and no pair is in two splits', async () => {
  await ready;
  const out = path.join(dir, 'quiz');
  const r = runCli('tokenize', ['--input', quiz, '--tokenizer', model, '--output-dir', out, '--max-length', '128', '--test-split', '0.1', '--mask-prompt', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /train \d+ pairs -> \d+ rows, val \d+ pairs -> \d+ rows, test \d+ pairs -> \d+ rows of 128 uint16 tokens/);
  const meta = readShardsMeta(out);
  const tok = await loadTokenizer(model);
  assert.equal(meta.tokenizer.sha256, tok.sha256);
  assert.deepEqual(meta.specialIds, { pad: 0, unk: 1, bos: 2, eos: 3 });
  assert.equal(meta.seqLen, 128);
  assert.equal(meta.pairs, 1401);
  assert.equal(meta.splits.train.splitPairs + meta.splits.val.splitPairs + meta.splits.test!.splitPairs, 0, 'quiz pairs fit in a row');

  // Every pair sits whole in exactly the split the seed gives it.
  const pairs = await pairsOf(quiz);
  const splitOf = assignSplits(pairs.length, 0.9, 0.1, 42);
  const names = ['train', 'val', 'test'] as const;
  const expected = names.map((_, k) => pairs.filter((_, i) => splitOf[i] === k).map((p) => encodePair(tok, p).ids.join(' ')).sort());
  names.forEach((name, k) => {
    const rows = loadTokenRows(path.join(out, `${name}.npy`));
    assert.equal(rows.split, name);
    assert.deepEqual(pairsInRows(rows).sort(), expected[k], `${name} holds exactly its pairs`);
    assert.equal(meta.splits[name]!.pairs, expected[k].length);
    // The mask marks the answer tokens (eos included) and nothing else.
    for (let i = 0; i < rows.tokens.length; i++) {
      if (rows.tokens[i] === tok.specialIds.pad || rows.tokens[i] === tok.specialIds.bos) assert.equal(rows.mask![i], 0);
      if (rows.tokens[i] === tok.specialIds.eos) assert.equal(rows.mask![i], 1);
    }
  });
  assert.equal(expected[0].length + expected[1].length + expected[2].length, 1401);
  // The held-out pairs are also Q&A text, for gptmed-evaluate.
  assert.equal(meta.splits.test!.qaFile, 'test.qa.txt');
  const heldOut = await pairsOf(path.join(out, 'test.qa.txt'));
  assert.deepEqual(heldOut, pairs.filter((_, i) => splitOf[i] === 2));

  const py = spawnSync('/usr/bin/python3', ['-c', 'import numpy as np,sys\nfor f in sys.argv[1:]:\n a=np.load(f)\n print(f.split("/")[-1], a.dtype, a.shape, int(a.astype(np.int64).sum()))', ...names.map((n) => path.join(out, `${n}.npy`)), path.join(out, 'train.mask.npy')], { encoding: 'utf8' });
  assert.equal(py.status, 0, `NumPy could not load the shards (apt-get install python3-numpy): ${py.stderr}`);
  const lines = py.stdout.trim().split('\n');
  names.forEach((name, k) => {
    const rows = loadTokenRows(path.join(out, `${name}.npy`));
    let sum = 0;
    for (const t of rows.tokens) sum += t;
    assert.equal(lines[k], `${name}.npy uint16 (${rows.rows}, 128) ${sum}`);
  });
  assert.match(lines[3], /^train\.mask\.npy uint8 \(\d+, 128\) \d+$/);
});

test('pairs longer than a row are cut into windows --stride apart and counted; --shard-size cuts files; same seed, same bytes', async () => {
  await ready;
  const tok = await loadTokenizer(model);
  const pairs = await pairsOf(pythonFaq);
  const run = (name: string): ShardsMeta => {
    const args = ['--input', pythonFaq, '--tokenizer', model, '--output-dir', path.join(dir, name), '--max-length', '128', '--stride', '96', '--shard-size', '50', '--seed', '7'];
    const r = runCli('tokenize', [...args, '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    return readShardsMeta(path.join(dir, name));
  };
  const meta = run('faq-a');
  const long = pairs.filter((p) => encodePair(tok, p).ids.length > 128).length;
  assert.ok(long > 20);
  assert.equal(meta.splits.train.splitPairs + meta.splits.val.splitPairs, long);
  assert.equal(meta.splits.train.files[0], 'train-00000.npy');
  assert.equal(meta.splits.train.files.length, Math.ceil(meta.splits.train.rows / 50));
  const first = loadTokenRows(path.join(dir, 'faq-a', 'train-00000.npy'));
  assert.equal(first.rows, 50);
  // A long pair's windows overlap by 128 - 96 tokens.
  const longest = pairs.map((p) => encodePair(tok, p).ids).sort((a, b) => b.length - a.length)[0];
  const rowsAll = meta.splits.train.files.flatMap((f) => {
    const t = loadTokenRows(path.join(dir, 'faq-a', f));
    return Array.from({ length: t.rows }, (_, r) => Array.from(t.tokens.subarray(r * 128, (r + 1) * 128)));
  }).concat(meta.splits.val.files.flatMap((f) => {
    const t = loadTokenRows(path.join(dir, 'faq-a', f));
    return Array.from({ length: t.rows }, (_, r) => Array.from(t.tokens.subarray(r * 128, (r + 1) * 128)));
  }));
  const w0 = rowsAll.findIndex((row) => row.join(' ') === longest.slice(0, 128).join(' '));
  assert.ok(w0 >= 0, 'the first window of the longest pair is a row');
  assert.deepEqual(rowsAll[w0 + 1], longest.slice(96, 224));
  run('faq-b');
  for (const f of fs.readdirSync(path.join(dir, 'faq-a'))) {
    if (f === 'meta.json') continue;
    assert.ok(fs.readFileSync(path.join(dir, 'faq-a', f)).equals(fs.readFileSync(path.join(dir, 'faq-b', f))), f);
  }
});

test('bad input: non-Q&A text, missing or corrupt model, a model SentencePiece refuses, an existing output without --force, bad flags', async () => {
  await ready;
  const plain = path.join(dir, 'plain.txt');
  fs.writeFileSync(plain, 'just some text\nwithout any pairs\n');
  const garbage = path.join(dir, 'garbage.model');
  fs.writeFileSync(garbage, Buffer.from([0x0a, 0xff, 0xff, 0x01, 0x02, 0x03]));
  // A well-formed ModelProto that SentencePiece refuses to load (a piece defined twice): the workers find out.
  const refused = path.join(dir, 'refused.model');
  const proto = decodeModelProto(fs.readFileSync(model));
  proto.pieces[10] = { ...proto.pieces[11] };
  fs.writeFileSync(refused, encodeModelProto(proto));
  const exists = path.join(dir, 'exists');
  fs.mkdirSync(exists);
  fs.writeFileSync(path.join(exists, 'keep.txt'), 'mine');
  const cases: Array<[string[], RegExp, number?]> = [
    [['--input', plain, '--tokenizer', model, '--output-dir', path.join(dir, 'o1')], /plain\.txt: no Q&A pairs found/],
    [['--input', quiz, '--tokenizer', path.join(dir, 'nope.model'), '--output-dir', path.join(dir, 'o2')], /nope\.model: tokenizer model file not found/],
    [['--input', quiz, '--tokenizer', garbage, '--output-dir', path.join(dir, 'o3')], /garbage\.model: not a (valid )?SentencePiece model/],
    [['--input', quiz, '--tokenizer', refused, '--output-dir', path.join(dir, 'o6')], /refused\.model: SentencePiece cannot load this model \(.*already defined.*\); re-run gptmed-train-tokenizer/],
    [['--input', quiz, '--tokenizer', model, '--output-dir', exists], /exists already exists; .*--force/],
    [['--input', quiz, '--tokenizer', model, '--output-dir', path.join(dir, 'o4'), '--train-split', '1.5'], /--train-split must be between 0 and 1/, 2],
    [['--input', quiz, '--tokenizer', model, '--output-dir', path.join(dir, 'o5'), '--max-length', '64', '--stride', '65'], /--stride must be an integer from 1 to --max-length/, 2],
  ];
  for (const [args, pattern, status = 1] of cases) {
    const r = runCli('tokenize', [...args, '--quiet']);
    assert.equal(r.status, status, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^gptmed-tokenize: error: /);
    assert.match(lines[0], pattern);
  }
  for (const o of ['o1', 'o2', 'o3', 'o4', 'o5', 'o6']) assert.equal(fs.existsSync(path.join(dir, o)), false);
  assert.deepEqual(fs.readdirSync(exists), ['keep.txt']);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no scratch left behind');
});

test('a broken meta.json or shard names the file and the stage to re-run', async () => {
  await ready;
  const out = path.join(dir, 'check');
  assert.equal(runCli('tokenize', ['--input', quiz, '--tokenizer', model, '--output-dir', out, '--max-length', '64', '--quiet']).status, 0);
  const meta = readShardsMeta(out);

  const broken = path.join(dir, 'broken');
  fs.cpSync(out, broken, { recursive: true });
  fs.writeFileSync(path.join(broken, 'meta.json'), JSON.stringify({ ...meta, vocabSize: 3 }));
  assert.throws(() => loadTokenRows(path.join(broken, 'train.npy')), (e: unknown) => e instanceof UserError && /train\.npy: holds token id \d+ .*outside the vocabulary.*re-run gptmed-tokenize/.test(e.message));
  fs.writeFileSync(path.join(broken, 'meta.json'), '{"format": "something else"}');
  assert.throws(() => readShardsMeta(broken), (e: unknown) => e instanceof UserError && /meta\.json: is not a gptmed shards description.*re-run gptmed-tokenize/.test(e.message));
  fs.rmSync(path.join(broken, 'meta.json'));
  assert.throws(() => readShardsMeta(broken), (e: unknown) => e instanceof UserError && /meta\.json: not found; run gptmed-tokenize/.test(e.message));
});
