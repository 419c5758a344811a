/**
 * Tokenize throughput, ours against spm_encode, in the same run on the same
 * Q&A file, with the same model (trained here by gptmed-train-tokenizer).
 * The file holds no text twice, since gptmed-tokenize encodes each distinct
 * word once: the three files of ../shared/data/qa, then pairs made of the
 * sentences of ../shared/data/corpus/sotu.txt (a sentence asks, the next three
 * answer), up to --megabytes.
 * Prints MB/s of both and the ratio (target: ours >= spm_encode's).
 *   scripts/bench-tokenize [--megabytes 11]   (11: about all the text the sources hold without repeating)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { measure } from './bench-measure.js';

const root = path.resolve(import.meta.dirname, '..');
const args = yargs(hideBin(process.argv))
  .option('megabytes', { type: 'number', default: 11 })
  .option('vocab-size', { type: 'number', default: 2000 })
  .strict()
  .parseSync();

const qaDir = path.resolve(root, '..', 'shared', 'data', 'qa');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gptmed-bench-tokenize-'));
try {
  const qaFiles = fs.readdirSync(qaDir).filter((f) => f.endsWith('.qa.txt')).map((f) => path.join(qaDir, f));
  const sample = qaFiles.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  const sentences = fs.readFileSync(path.resolve(root, '..', 'shared', 'data', 'corpus', 'sotu.txt'), 'utf8').split(/(?<=[.?!])\s+/).filter((t) => t.trim() !== '');
  const parts = [sample];
  let bytes = Buffer.byteLength(sample);
  for (let i = 0; i + 4 <= sentences.length && bytes < args.megabytes * 1e6; i += 4) {
    parts.push(`\nQ: ${sentences[i].trim()}\nA: ${sentences.slice(i + 1, i + 4).join(' ').trim()}\n`);
    bytes += Buffer.byteLength(parts[parts.length - 1]);
  }
  if (bytes < args.megabytes * 1e6) console.log(`(the sources hold ${(bytes / 1e6).toFixed(1)} MB without repeating; using that)`);
  const input = path.join(tmp, 'bench.qa.txt');
  fs.writeFileSync(input, parts.join(''));
  const model = path.join(tmp, 'tok');
  await measure(process.execPath, [path.join(root, 'bin', 'gptmed-train-tokenizer.js'), '--input', path.join(qaDir, 'python-faq.qa.txt'), '--output-prefix', model, '--vocab-size', String(args.vocabSize), '--quiet']);
  const mb = fs.statSync(input).size / 1e6;
  const spm = await measure('spm_encode', [`--model=${model}.model`, '--output_format=id', `--input=${input}`, `--output=${path.join(tmp, 'spm.ids')}`]);
  const ours = await measure(process.execPath, [path.join(root, 'bin', 'gptmed-tokenize.js'), '--input', input, '--tokenizer', `${model}.model`, '--output-dir', path.join(tmp, 'shards'), '--quiet']);
  console.log(`input ${mb.toFixed(1)} MB of Q&A text (no text repeated), ${os.availableParallelism()} cores`);
  console.log(`spm_encode 0.1.97  ${(mb / spm.seconds).toFixed(2)} MB/s  (${spm.seconds.toFixed(2)} s, one thread, line by line)`);
  console.log(`gptmed-tokenize    ${(mb / ours.seconds).toFixed(2)} MB/s  (${ours.seconds.toFixed(2)} s, ${os.availableParallelism()} worker threads, each distinct word encoded once; packing and .npy writing included)`);
  console.log(`throughput ratio ${(spm.seconds / ours.seconds).toFixed(2)}x (target >= 1x)`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
