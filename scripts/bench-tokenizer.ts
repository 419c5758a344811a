/**
 * Tokenizer training, ours against spm_train, in the same run on the same
 * file: BPE at vocab 8000 on ../shared/data/corpus/sotu.txt (10.8 MB; its
 * lines are whole speeches, so both get --max-sentence-length 300000).
 * Prints both and the ratios (targets: time <= 1.5x, peak RSS <= 4x).
 *   scripts/bench-tokenizer [--input FILE] [--vocab-size 8000] [--runs 1]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { measure, type Measured } from './bench-measure.js';

const root = path.resolve(import.meta.dirname, '..');
const args = yargs(hideBin(process.argv))
  .option('input', { type: 'string', default: path.resolve(root, '..', 'shared', 'data', 'corpus', 'sotu.txt') })
  .option('vocab-size', { type: 'number', default: 8000 })
  .option('max-sentence-length', { type: 'number', default: 300000 })
  .option('runs', { type: 'number', default: 1, describe: 'runs of each; the best is kept' })
  .strict()
  .parseSync();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gptmed-bench-tokenizer-'));
try {
  const best = async (cmd: string, argv: string[]): Promise<Measured> => {
    const runs: Measured[] = [];
    for (let i = 0; i < args.runs; i++) runs.push(await measure(cmd, argv));
    return { seconds: Math.min(...runs.map((r) => r.seconds)), cpuSeconds: Math.min(...runs.map((r) => r.cpuSeconds)), peakMiB: Math.max(...runs.map((r) => r.peakMiB)) };
  };
  const spm = await best('spm_train', [
    `--input=${args.input}`, `--model_prefix=${path.join(tmp, 'spm')}`, `--vocab_size=${args.vocabSize}`, '--model_type=bpe', `--max_sentence_length=${args.maxSentenceLength}`,
  ]);
  const ours = await best(process.execPath, [
    path.join(root, 'bin', 'gptmed-train-tokenizer.js'), '--input', args.input, '--output-prefix', path.join(tmp, 'ours'),
    '--vocab-size', String(args.vocabSize), '--max-sentence-length', String(args.maxSentenceLength), '--input-format', 'text', '--quiet', '--force',
  ]);
  const same = fs.readFileSync(path.join(tmp, 'ours.vocab')).equals(fs.readFileSync(path.join(tmp, 'spm.vocab')));
  const mb = fs.statSync(args.input).size / 1e6;
  console.log(`input ${args.input} (${mb.toFixed(1)} MB), BPE vocab ${args.vocabSize}`);
  console.log(`spm_train 0.1.97        ${spm.seconds.toFixed(2)} s (CPU ${spm.cpuSeconds.toFixed(2)} s)   peak RSS ${spm.peakMiB.toFixed(0)} MiB`);
  console.log(`gptmed-train-tokenizer  ${ours.seconds.toFixed(2)} s (CPU ${ours.cpuSeconds.toFixed(2)} s)   peak RSS ${ours.peakMiB.toFixed(0)} MiB`);
  console.log(
    `time ratio ${(ours.seconds / spm.seconds).toFixed(2)}x (target <= 1.5x; CPU time ${(ours.cpuSeconds / spm.cpuSeconds).toFixed(2)}x), ` +
      `peak RSS ratio ${(ours.peakMiB / spm.peakMiB).toFixed(2)}x (target <= 4x), .vocab identical: ${same ? 'yes' : 'NO'}`,
  );
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
