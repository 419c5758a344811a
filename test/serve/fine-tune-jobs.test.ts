/**
 * Fine-tuning over HTTP: a job with `initFrom` starts from a model the server has (its weights, shape and
 * tokenizer), with or without LoRA, and the result is a model the `openai` client talks to. The real server on
 * loopback, real child processes of the built binaries (dist/: `npm run build` first), tiny models.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { readManifest, resolveCheckpoint } from '../../src/model/index.js';
import type { JobView } from '../../src/serve/jobs.js';
import { startServer } from '../../src/serve/server.js';
import { tempDir } from '../helpers.js';
import { qaText, samplePairs } from './sample-data.js';

const tiny = { dModel: 32, nLayers: 1, nHeads: 2, dFf: 64, maxSeqLen: 64, vocabSize: 300, maxLength: 64, batchSize: 8, evalInterval: 10 };
const pairs = samplePairs(200);
const qa = qaText(pairs);

let app: FastifyInstance;
let url: string;
let runsDir: string;

async function postJob(config: object): Promise<{ status: number; body: JobView & { error?: { message: string; param: string } } }> {
  const form = new FormData();
  form.append('config', JSON.stringify(config));
  form.append('file', new Blob([qa]), 'pairs.qa.txt');
  const r = await fetch(`${url}/v1/jobs`, { method: 'POST', body: form, signal: AbortSignal.timeout(20_000) });
  return { status: r.status, body: (await r.json()) as JobView & { error?: { message: string; param: string } } };
}

async function ended(id: string): Promise<JobView> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const job = (await (await fetch(`${url}/v1/jobs/${id}`, { signal: AbortSignal.timeout(10_000) })).json()) as JobView;
    if (['succeeded', 'failed', 'cancelled', 'interrupted'].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} did not end: ${JSON.stringify(job)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('fine-tuning jobs (initFrom, LoRA) over HTTP', { timeout: 240_000 }, () => {
  before(async () => {
    runsDir = path.join(tempDir('gptmed-finetune-'), 'runs');
    ({ app, url } = await startServer({ runsDir, checkpoints: [], host: '127.0.0.1', port: 0, maxConcurrent: 1, maxUploadMb: 10, logger: false }));
    const base = await postJob({ ...tiny, name: 'base', maxSteps: 20 });
    assert.equal(base.status, 201, JSON.stringify(base.body));
    assert.equal((await ended('base')).state, 'succeeded');
  });
  after(async () => {
    await app.close();
  });

  test('refused in one line naming the key: an unknown model, a shape or tokenizer setting with it, LoRA without it', async () => {
    const cases: Array<[object, string, RegExp]> = [
      [{ initFrom: 'nope' }, 'config.initFrom', /no model 'nope' \(GET \/v1\/models lists them\)/],
      [{ initFrom: 'base', dModel: 64 }, 'config.dModel', /comes from config\.initFrom's model 'base'; leave it out/],
      [{ initFrom: 'base', vocabSize: 500 }, 'config.vocabSize', /comes from config\.initFrom's model 'base'/],
      [{ loraRank: 4 }, 'config.loraRank', /needs config\.initFrom/],
    ];
    for (const [config, param, message] of cases) {
      const r = await postJob(config);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error?.param, param);
      assert.match(r.body.error?.message ?? '', message);
    }
    assert.deepEqual(fs.readdirSync(runsDir).filter((d) => !d.startsWith('.')), ['base'], 'a refused job leaves nothing behind');
  });

  test("a LoRA fine-tune of a served model keeps its tokenizer, records its base, and answers through the openai client", async () => {
    const estimate = await fetch(`${url}/v1/jobs/estimate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ config: { initFrom: 'base', loraRank: 2, maxSteps: 12, batchSize: 8, maxLength: 64 }, pairs: 200 }),
      signal: AbortSignal.timeout(60_000),
    });
    const e = (await estimate.json()) as { parameters: number; basis: string };
    const baseManifest = readManifest(resolveCheckpoint(path.join(runsDir, 'base')));
    assert.equal(e.parameters, baseManifest.parameterCount, "the estimate is for the base model's shape");

    const r = await postJob({ name: 'tuned', initFrom: 'base', loraRank: 2, loraAlpha: 4, maxSteps: 12, batchSize: 8, maxLength: 64, evalInterval: 6 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const job = await ended('tuned');
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.deepEqual(job.completedStages, ['convert', 'train-tokenizer', 'tokenize', 'train']);
    assert.ok(!fs.existsSync(path.join(runsDir, 'tuned', 'tokenizer')), 'no tokenizer is trained for a fine-tune');

    const stepDir = resolveCheckpoint(path.join(runsDir, 'tuned'));
    const manifest = readManifest(stepDir);
    assert.equal(manifest.lora?.rank, 2);
    assert.equal(manifest.lora?.base.path, path.resolve(resolveCheckpoint(path.join(runsDir, 'base'))));
    assert.equal(manifest.tokenizer.sha256, baseManifest.tokenizer.sha256);
    assert.deepEqual(manifest.modelConfig, { ...baseManifest.modelConfig, dropout: manifest.modelConfig.dropout });

    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 30_000 });
    const answer = await client.chat.completions.create({ model: 'tuned', messages: [{ role: 'user', content: pairs[0]![0] }], max_tokens: 8, temperature: 0 });
    assert.equal(answer.model, 'tuned');
    assert.ok((answer.usage?.completion_tokens ?? 0) > 0);
  });
});
