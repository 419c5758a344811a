/** The framing of a pair, shared by tokenize and generate. */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { pairText } from '../../src/convert/pair-text.js';
import { readQaFile } from '../../src/convert/qa-format.js';
import { encodePair, encodePrompt } from '../../src/dataset/framing.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { trainTokenizer } from '../../src/tokenizer/train.js';
import { referenceDir, tempDir } from '../helpers.js';

const dir = tempDir('gptmed-framing-');
const qaFiles = ['bsdgames-quiz.qa.txt', 'python-faq.qa.txt', 'debian-faq.qa.txt'].map((f) => path.join(referenceDir, f));

test('on every pair of three real files, encodePrompt is an exact prefix of encodePair, answerStart is where it ends, and eos closes the pair', async () => {
  const prefix = path.join(dir, 'tok');
  await trainTokenizer({ input: qaFiles[1], outputPrefix: prefix, vocabSize: 1000, quiet: true });
  const tok = await loadTokenizer(`${prefix}.model`);
  let pairs = 0;
  for (const file of qaFiles) {
    for await (const pair of readQaFile(file)) {
      const { ids, answerStart } = encodePair(tok, pair);
      const prompt = encodePrompt(tok, pair.question);
      assert.deepEqual(ids.slice(1, -1), tok.encode(pairText(pair)), `${file}: the pair's ids encode its whole text`);
      assert.deepEqual(ids.slice(0, prompt.length), prompt, `${file}: ${pair.question}`);
      assert.equal(answerStart, prompt.length);
      assert.equal(ids[0], tok.specialIds.bos);
      assert.equal(ids[ids.length - 1], tok.specialIds.eos);
      // The answer tokens are the answer: " " + answer, for the file the tokenizer knows every character of.
      if (file === qaFiles[1]) assert.equal(tok.decode(ids.slice(answerStart)), ` ${pair.answer.normalize('NFKC').replace(/\t/g, ' ')}`);
      pairs++;
    }
  }
  assert.ok(pairs > 1700);
});
