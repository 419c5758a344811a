/**
 * A small model trained for the export tests through the real commands (train-tokenizer, tokenize with a
 * held-out test split, train) on the bundled sample, data/sample.qa.txt: a real run directory, with the
 * held-out questions the exported models are compared on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readQaFile, type QaPair } from '../../src/convert/qa-format.js';
import { repoRoot, runCli } from '../helpers.js';

export interface TrainedRun {
  runDir: string;
  tokenizerPath: string;
  /** The shards directory (train.npy, val.npy, meta.json, test.qa.txt). */
  shardsDir: string;
  /** Pairs gptmed-tokenize held out (test.qa.txt); the model never saw them. */
  heldOut: QaPair[];
}

function mustRun(name: string, args: string[]): void {
  const r = runCli(name, args);
  if (r.status !== 0) throw new Error(`gptmed-${name} failed (${r.status}): ${r.stderr}`);
}

/** Train the run under `dir` (about 20 s on two cores): d 64, 2 layers, context 128, vocabulary 500. */
export async function trainExportRun(dir: string, steps = 150): Promise<TrainedRun> {
  const sample = path.join(repoRoot, 'data', 'sample.qa.txt');
  const prefix = path.join(dir, 'tok', 'sample');
  const shardsDir = path.join(dir, 'shards');
  const runDir = path.join(dir, 'run');
  mustRun('train-tokenizer', ['--input', sample, '--output-prefix', prefix, '--vocab-size', '500']);
  mustRun('tokenize', ['--input', sample, '--tokenizer', `${prefix}.model`, '--output-dir', shardsDir, '--max-length', '128', '--test-split', '0.025']);
  mustRun('train', [
    '--train-data', path.join(shardsDir, 'train.npy'), '--val-data', path.join(shardsDir, 'val.npy'), '--checkpoint-dir', runDir,
    '--model-size', 'tiny', '--d-model', '64', '--n-layers', '2', '--n-heads', '4', '--d-ff', '256', '--max-seq-len', '128', '--dropout', '0',
    '--batch-size', '16', '--max-steps', String(steps), '--learning-rate', '3e-3', '--warmup-steps', '20',
    '--eval-interval', String(steps), '--eval-batches', '4', '--save-interval', String(steps), '--log-interval', '1000', '--device', 'wasm',
  ]);
  const heldOut: QaPair[] = [];
  for await (const pair of readQaFile(path.join(shardsDir, 'test.qa.txt'))) heldOut.push(pair);
  if (!fs.existsSync(path.join(runDir, 'best'))) throw new Error(`${runDir}: training wrote no best checkpoint`);
  return { runDir, tokenizerPath: `${prefix}.model`, shardsDir, heldOut };
}
