/**
 * The compatibility bar: on plain text with default settings, our .vocab (and
 * .model) are byte-identical to what Debian's spm_train 0.1.97 writes, on real
 * corpora, at vocab 1000 and 8000, with both normalizations.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { trainTokenizer, type Normalization } from '../../src/tokenizer/train.js';
import { runCli, referenceDir, tempDir } from '../helpers.js';

const dir = tempDir('gptmed-spm-compat-');
const corpora = {
  quiz: path.join(referenceDir, 'bsdgames-quiz.qa.txt'),
  pythonFaq: path.join(referenceDir, 'python-faq.qa.txt'),
};

/** spm_train with its defaults; the outputs are renamed to <prefix>.spm.{model,vocab}. */
function spmTrain(input: string, prefix: string, vocabSize: number, normalization: Normalization, extra: string[] = []): void {
  const args = [`--input=${input}`, `--model_prefix=${prefix}`, `--vocab_size=${vocabSize}`, '--model_type=bpe', ...extra];
  if (normalization === 'identity') args.push('--normalization_rule_name=identity');
  const r = spawnSync('spm_train', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `spm_train failed (apt-get install sentencepiece): ${r.error ?? r.stderr.slice(-300)}`);
  fs.renameSync(`${prefix}.model`, `${prefix}.spm.model`);
  fs.renameSync(`${prefix}.vocab`, `${prefix}.spm.vocab`);
}

for (const [name, input] of Object.entries(corpora)) {
  for (const vocabSize of [1000, 8000]) {
    for (const normalization of ['nmt_nfkc', 'identity'] as const) {
      test(`${name}, vocab ${vocabSize}, ${normalization}: .vocab and .model are byte-identical to spm_train's`, async () => {
        const prefix = path.join(dir, `${name}-${vocabSize}-${normalization}`);
        spmTrain(input, prefix, vocabSize, normalization);
        await trainTokenizer({ input, outputPrefix: prefix, vocabSize, normalization, inputFormat: 'text', quiet: true });
        const ours = fs.readFileSync(`${prefix}.vocab`);
        const theirs = fs.readFileSync(`${prefix}.spm.vocab`);
        assert.equal(ours.toString('utf8').split('\n').length, vocabSize + 1);
        assert.ok(ours.equals(theirs), `.vocab differs from spm_train's (${prefix}.vocab)`);
        assert.ok(fs.readFileSync(`${prefix}.model`).equals(fs.readFileSync(`${prefix}.spm.model`)), '.model differs from spm_train\'s');
      });
    }
  }
}

test('a 1 MB slice of sotu.txt (very long lines, --max-sentence-length) at vocab 8000 matches spm_train, through the CLI', () => {
  const slice = path.join(referenceDir, 'sotu-1mb.txt');
  const prefix = path.join(dir, 'sotu');
  spmTrain(slice, prefix, 8000, 'nmt_nfkc', ['--max_sentence_length=300000']);
  const r = runCli('train-tokenizer', ['--input', slice, '--output-prefix', prefix, '--vocab-size', '8000', '--max-sentence-length', '300000', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /8000 pieces .*plain text/);
  assert.ok(fs.readFileSync(`${prefix}.vocab`).equals(fs.readFileSync(`${prefix}.spm.vocab`)), '.vocab differs from spm_train\'s');
});

test('plain text with default flags skips lines over 4192 bytes as spm_train does, and says how many', async () => {
  const input = path.join(dir, 'long-lines.txt');
  const short = fs.readFileSync(corpora.quiz, 'utf8');
  fs.writeFileSync(input, `${short}${'x'.repeat(5000)}\n${'long line '.repeat(500)}\n`);
  const prefix = path.join(dir, 'long-lines');
  spmTrain(input, prefix, 1000, 'nmt_nfkc');
  const warnings: string[] = [];
  await trainTokenizer({ input, outputPrefix: prefix, vocabSize: 1000, inputFormat: 'text', quiet: true, warn: (m) => warnings.push(m) });
  assert.ok(fs.readFileSync(`${prefix}.vocab`).equals(fs.readFileSync(`${prefix}.spm.vocab`)));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /2 lines longer than 4192 bytes skipped; raise --max-sentence-length/);
});
