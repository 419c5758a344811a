/**
 * A really tiny model trained for these tests on test/fixtures/generate/quiz.qa.txt,
 * through the library (tokenizer, framing, the train stage's step and
 * optimizer, the checkpoint format): what the generate stage needs to prove
 * that answers stop by themselves and that the KV cache changes nothing.
 */
import * as path from 'node:path';
import { initBackend } from '../../src/backend/index.js';
import { readQaFile, type QaPair } from '../../src/convert/qa-format.js';
import { encodePair } from '../../src/dataset/index.js';
import { GPT, newTrainState, saveCheckpoint, writePointer, type ModelConfig } from '../../src/model/index.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { trainTokenizer } from '../../src/tokenizer/train.js';
import type { Batch } from '../../src/train/data.js';
import { AdamW } from '../../src/train/optimizer.js';
import { TrainStep } from '../../src/train/step.js';
import { fixturesDir } from '../helpers.js';

export const quizFile = path.join(fixturesDir, 'generate', 'quiz.qa.txt');

export interface TinyRun {
  runDir: string;
  tokenizerPath: string;
  pairs: QaPair[];
  tokenizer: Tokenizer;
  /** Loss of the last step (mean per answer token). */
  finalLoss: number;
}

async function readPairs(): Promise<QaPair[]> {
  const pairs: QaPair[] = [];
  for await (const p of readQaFile(quizFile)) pairs.push(p);
  return pairs;
}

/** One padded batch of every pair; only answer tokens (and <eos>) count in the loss. */
function batchOf(tok: Tokenizer, pairs: readonly QaPair[], T: number): Batch {
  const x = new Int32Array(pairs.length * T);
  const y = new Int32Array(pairs.length * T);
  const weights = new Float32Array(pairs.length * T);
  let targets = 0;
  pairs.forEach((pair, r) => {
    const { ids, answerStart } = encodePair(tok, pair);
    if (ids.length > T + 1) throw new Error(`pair ${r} has ${ids.length} tokens, more than ${T + 1}`);
    for (let t = 0; t + 1 < ids.length; t++) {
      x[r * T + t] = ids[t];
      y[r * T + t] = ids[t + 1];
      if (t + 1 >= answerStart) {
        weights[r * T + t] = 1;
        targets++;
      }
    }
  });
  return { rows: pairs.length, T, x, y, weights, targets };
}

/** A Q&A tokenizer for the quiz pairs, trained by gptmed's own trainer as `<dir>/<name>.model`. */
export async function trainQuizTokenizer(dir: string, name: string, vocabSize: number): Promise<string> {
  const result = await trainTokenizer({ input: quizFile, outputPrefix: path.join(dir, name), vocabSize, quiet: true, warn: () => {} });
  return result.modelPath;
}

/** Train a tokenizer and a model for `steps` full-batch steps; write a run directory with a `best` pointer. */
export async function trainTinyRun(dir: string, steps: number): Promise<TinyRun> {
  await initBackend('wasm');
  const pairs = await readPairs();
  const tokenizerPath = await trainQuizTokenizer(dir, 'quiz', 150);
  const tokenizer = await loadTokenizer(tokenizerPath);
  const config: ModelConfig = { vocabSize: tokenizer.vocabSize, dModel: 64, nLayers: 2, nHeads: 4, dFf: 128, maxSeqLen: 40, dropout: 0 };
  const model = new GPT(config, { seed: 7 });
  const optimizer = new AdamW(model.parameters(), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
  const step = new TrainStep(model, optimizer, 1.0);
  const batch = batchOf(tokenizer, pairs, config.maxSeqLen - 1);
  let finalLoss = NaN;
  for (let s = 0; s < steps; s++) finalLoss = (await step.run([batch], 1e-2, `tiny:${s}`)).loss;
  const runDir = path.join(dir, 'run');
  const stepDir = await saveCheckpoint(
    runDir,
    model,
    {
      step: steps,
      tokenizer: { file: tokenizer.modelPath, sha256: tokenizer.sha256 },
      specialIds: tokenizer.specialIds,
      seqLen: config.maxSeqLen,
      trainConfig: { steps, learningRate: 1e-2 },
      trainState: newTrainState(1, 0),
      backend: 'wasm',
    },
    null,
  );
  writePointer(runDir, 'best', stepDir);
  optimizer.dispose();
  model.dispose();
  return { runDir, tokenizerPath, pairs, tokenizer, finalLoss };
}
