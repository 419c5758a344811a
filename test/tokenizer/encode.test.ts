/**
 * Our models in use: sentencepiece-js (through loadTokenizer) segments every
 * line of a real file exactly as spm_encode does, and Python's sentencepiece
 * agrees on Q&A pairs with newlines.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainTokenizer } from '../../src/tokenizer/train.js';
import { readQaFile } from '../../src/convert/qa-format.js';
import { pairText } from '../../src/convert/pair-text.js';
import { referenceDir, tempDir } from '../helpers.js';

const dir = tempDir('gptmed-encode-');
const pythonFaq = path.join(referenceDir, 'python-faq.qa.txt');
const debianFaq = path.join(referenceDir, 'debian-faq.qa.txt');

function spmEncodeIds(model: string, input: string): number[][] {
  const r = spawnSync('spm_encode', [`--model=${model}`, '--output_format=id', `--input=${input}`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `spm_encode failed: ${r.error ?? r.stderr}`);
  return r.stdout.split('\n').slice(0, -1).map((l) => (l === '' ? [] : l.split(' ').map(Number)));
}

for (const mode of ['text', 'qa'] as const) {
  test(`a ${mode === 'qa' ? 'Q&A-mode' : 'plain-text'} model encodes every line of debian-faq exactly as spm_encode does`, async () => {
    const prefix = path.join(dir, `enc-${mode}`);
    await trainTokenizer({ input: pythonFaq, outputPrefix: prefix, vocabSize: 2000, inputFormat: mode, quiet: true });
    const tok = await loadTokenizer(`${prefix}.model`);
    const lines = fs.readFileSync(debianFaq, 'utf8').split('\n').slice(0, -1);
    const expected = spmEncodeIds(`${prefix}.model`, debianFaq);
    assert.equal(expected.length, lines.length);
    let differing = 0;
    lines.forEach((line, i) => {
      if (tok.encode(line).join(' ') !== expected[i].join(' ')) differing++;
    });
    assert.equal(differing, 0, `${differing} of ${lines.length} lines encode differently`);
    assert.ok(expected.some((ids) => ids.includes(tok.specialIds.unk)), 'the check should cover unknown characters too');
  });
}

test("Python's sentencepiece loads the Q&A model and encodes pairs with newlines as we do", async () => {
  const prefix = path.join(dir, 'py');
  await trainTokenizer({ input: pythonFaq, outputPrefix: prefix, vocabSize: 2000, quiet: true });
  const tok = await loadTokenizer(`${prefix}.model`);
  const texts: string[] = [];
  for await (const p of readQaFile(pythonFaq)) if (texts.length < 40) texts.push(pairText(p));
  const script = 'import json,sys,sentencepiece as s\nsp=s.SentencePieceProcessor(model_file=sys.argv[1])\nprint(json.dumps([sp.encode(t) for t in json.load(sys.stdin)]))';
  const r = spawnSync('/usr/bin/python3', ['-c', script, `${prefix}.model`], { input: JSON.stringify(texts), encoding: 'utf8' });
  assert.equal(r.status, 0, `python3 -c 'import sentencepiece' failed (apt-get install python3-sentencepiece): ${r.stderr}`);
  const theirs = JSON.parse(r.stdout) as number[][];
  const newline = tok.encode('\n');
  assert.equal(newline.length, 1);
  texts.forEach((t, i) => assert.deepEqual(tok.encode(t), theirs[i], `pair ${i}`));
  assert.ok(theirs.some((ids) => ids.includes(newline[0])), 'pairs with newlines were checked');
});
