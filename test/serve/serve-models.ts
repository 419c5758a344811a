/**
 * Models for the server tests: the tiny quiz run (answers end by themselves), and a "slow" model of
 * random weights with a long context: asked with gptmed's greedy preset (`slowGreedy`) it loops without
 * reaching <eos> and runs to max_tokens, a generation long enough to disconnect from, queue behind or
 * close the server under.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GPT, newTrainState, saveCheckpoint, writePointer } from '../../src/model/index.js';
import { trainTinyRun, type TinyRun } from '../generate/tiny-model.js';

/** gptmed's greedy preset, in request fields (typed `object` so it spreads into the openai client's params). */
export const slowGreedy: object = { preset: 'greedy' };

export interface ServeModels {
  runsDir: string;
  tiny: TinyRun;
  /** The run directory of the random model (id "slow"). */
  slowDir: string;
}

export async function serveModels(dir: string): Promise<ServeModels> {
  const tiny = await trainTinyRun(dir, 60);
  const runsDir = path.join(dir, 'runs');
  fs.mkdirSync(runsDir);
  fs.cpSync(tiny.runDir, path.join(runsDir, 'quiz'), { recursive: true });
  const slowDir = path.join(runsDir, 'slow');
  const model = new GPT({ vocabSize: tiny.tokenizer.vocabSize, dModel: 64, nLayers: 2, nHeads: 4, dFf: 128, maxSeqLen: 512, dropout: 0 }, { seed: 3 });
  const stepDir = await saveCheckpoint(
    slowDir,
    model,
    {
      step: 0,
      tokenizer: { file: tiny.tokenizer.modelPath, sha256: tiny.tokenizer.sha256 },
      specialIds: tiny.tokenizer.specialIds,
      seqLen: 512,
      trainConfig: {},
      trainState: newTrainState(0, 0),
      backend: 'wasm',
    },
    null,
  );
  writePointer(slowDir, 'best', stepDir);
  model.dispose();
  return { runsDir, tiny, slowDir };
}

/** POST a JSON body (or a raw string) with fetch; the status, headers and parsed body. */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: any }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: left as text
  }
  return { status: r.status, headers: r.headers, json };
}
