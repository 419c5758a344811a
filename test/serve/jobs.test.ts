/**
 * gptmed-serve's training jobs, driven over HTTP as a client would: the real server (port 0, loopback), real
 * child processes of the built binaries (dist/: `npm run build` first), tiny models so the file runs in
 * about a minute.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { JobView } from '../../src/serve/jobs.js';
import { startServer } from '../../src/serve/server.js';
import { runCli, tempDir } from '../helpers.js';
import { csvRows, csvText, qaText, samplePairs } from './sample-data.js';

/** Small enough to train in a second or two; the stages' flags in camelCase. */
const tiny = { dModel: 32, nLayers: 1, nHeads: 2, dFf: 64, maxSeqLen: 64, vocabSize: 300, maxLength: 64, batchSize: 8, evalInterval: 10 };

const work = tempDir('gptmed-jobs-');
const pairs = samplePairs(300);
const csv = csvText(csvRows(pairs));
const qa = qaText(pairs);

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

interface Server {
  app: FastifyInstance;
  url: string;
  runsDir: string;
}

async function serve(runsDir: string, maxUploadMb = 10): Promise<Server> {
  const { app, url } = await startServer({ runsDir, checkpoints: [], host: '127.0.0.1', port: 0, maxConcurrent: 1, maxUploadMb, logger: false });
  return { app, url, runsDir };
}

async function postJob(s: Server, config: object | string | null, file: { data: string | Uint8Array; name: string } | null): Promise<{ status: number; body: unknown }> {
  const form = new FormData();
  if (config !== null) form.append('config', typeof config === 'string' ? config : JSON.stringify(config));
  if (file) form.append('file', new Blob([file.data]), file.name);
  const r = await fetch(`${s.url}/v1/jobs`, { method: 'POST', body: form, signal: AbortSignal.timeout(20_000) });
  return { status: r.status, body: await r.json() };
}

async function request(s: Server, method: string, route: string): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${s.url}${route}`, { method, signal: AbortSignal.timeout(30_000) });
  return { status: r.status, body: await r.json() };
}

const getJob = async (s: Server, id: string): Promise<JobView> => (await request(s, 'GET', `/v1/jobs/${id}`)).body as JobView;

/** Poll the job until `done` holds (bounded). */
async function waitFor(s: Server, id: string, done: (j: JobView) => boolean, what: string, ms = 60_000): Promise<JobView> {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await getJob(s, id);
    if (done(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id}: not ${what} within ${ms / 1000} s: ${JSON.stringify(job)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const ended = (j: JobView): boolean => ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(j.state);
const training = (j: JobView): boolean => (j.stage === 'train' && (j.step ?? 0) >= 1) || ended(j);

/** The whole event stream of a job (it ends with the job). */
async function events(s: Server, id: string): Promise<Array<{ event: string; data: Record<string, unknown> }>> {
  const r = await fetch(`${s.url}/v1/jobs/${id}/events`, { signal: AbortSignal.timeout(60_000) });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
  const text = await r.text();
  return text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      return { event, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]) as Record<string, unknown> };
    });
}

/** A GET with the path sent exactly as written (fetch would resolve `..` itself). */
function rawGet(s: Server, rawPath: string): Promise<{ status: number; body: ErrorBody }> {
  const { port } = new URL(s.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET', timeout: 10_000 }, (res) => {
      let data = '';
      res.on('data', (c: Buffer) => (data += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) as ErrorBody }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('training jobs over HTTP', () => {
  let s: Server;
  before(async () => {
    s = await serve(path.join(work, 'runs'));
  });
  after(async () => {
    await s.app.close();
  });

  test('a CSV job runs convert, tokenizer, tokenize and train into runs/<id>, a model the API (and gptmed-generate) answers with; queued jobs wait their turn', async () => {
    const first = await postJob(s, { ...tiny, name: 'faq', maxSteps: 30 }, { data: csv, name: 'faq.csv' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal((first.body as JobView).id, 'faq');
    const second = await postJob(s, { ...tiny, maxSteps: 20, seed: 3 }, { data: csv, name: 'faq.csv' });
    assert.equal(second.status, 201, JSON.stringify(second.body));
    const secondId = (second.body as JobView).id;
    assert.match(secondId, /^job-/);
    const third = await postJob(s, { ...tiny, maxSteps: 20 }, { data: csv, name: 'faq.csv' });
    const thirdId = (third.body as JobView).id;

    // One job at a time: the others wait, in order; a queued job is simply cancelled.
    const while1 = await getJob(s, secondId);
    assert.equal(while1.state, 'queued');
    const cancelled = await request(s, 'POST', `/v1/jobs/${thirdId}/cancel`);
    assert.equal(cancelled.status, 200);
    assert.equal((cancelled.body as JobView).state, 'cancelled');

    const job = await waitFor(s, 'faq', ended, 'ended');
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(job.stage, 'train');
    assert.equal(job.step, 30);
    assert.equal(job.totalSteps, 30);
    assert.equal(typeof job.trainLoss, 'number');
    assert.equal(typeof job.valLoss, 'number');
    assert.ok((job.tokensPerSec ?? 0) > 0);
    assert.equal(job.etaSeconds, 0);
    assert.equal(job.error, null);

    const dir = path.join(s.runsDir, 'faq');
    for (const f of ['job.json', 'upload/faq.csv', 'data/data.qa.txt', 'tokenizer/tokenizer.model', 'shards/train.npy', 'latest', 'best', 'metrics.jsonl']) {
      assert.ok(fs.existsSync(path.join(dir, f)), `${f} in the run directory`);
    }
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8')).state, 'succeeded');

    // A late subscriber gets the whole history, then the stream ends with the job.
    const history = await events(s, 'faq');
    const states = history.filter((e) => e.event === 'state').map((e) => `${e.data.state}:${e.data.stage}`);
    assert.deepEqual(states, ['queued:null', 'running:convert', 'running:train-tokenizer', 'running:tokenize', 'running:train', 'succeeded:train']);
    const metrics = history.filter((e) => e.event === 'metrics').map((e) => e.data);
    const records = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(metrics, records);
    assert.deepEqual([metrics[0].type, metrics.at(-1)!.type], ['start', 'stop']);

    // A run of the same shape is now estimated from this job's measured pace, not by measuring again.
    const estimate = await fetch(`${s.url}/v1/jobs/estimate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ config: { ...tiny, maxSteps: 60 }, pairs: 300 }),
      signal: AbortSignal.timeout(20_000),
    });
    const e = (await estimate.json()) as { steps: number; tokensPerSec: number; seconds: number; basis: string };
    assert.equal(estimate.status, 200, JSON.stringify(e));
    // (The second job, of the same shape, may be training by now: its figure is as good.)
    assert.match(e.basis, new RegExp(`^tokens/s of job (faq|${secondId}) \\(same shape, batch and row length\\)`));
    assert.ok(e.tokensPerSec > 0);
    assert.equal(e.steps, 60);
    assert.equal(e.seconds, Math.round((60 * 8 * 63) / e.tokensPerSec));

    // The job's run directory is a model the server answers with, under the job's id.
    const models = (await request(s, 'GET', '/v1/models')).body as { data: Array<{ id: string }> };
    assert.ok(models.data.some((m) => m.id === 'faq'), JSON.stringify(models));
    const chat = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'faq', messages: [{ role: 'user', content: pairs[0][0] }], max_tokens: 4, seed: 1 }),
      signal: AbortSignal.timeout(30_000),
    });
    const answer = (await chat.json()) as { model: string; choices: Array<{ message: { role: string; content: string } }> };
    assert.equal(chat.status, 200, JSON.stringify(answer));
    assert.equal(answer.model, 'faq');
    assert.equal(answer.choices[0].message.role, 'assistant');
    assert.equal(typeof answer.choices[0].message.content, 'string');
    // And an ordinary run: gptmed-generate answers from it too.
    const gen = runCli('generate', ['--checkpoint', dir, '--prompt', pairs[0][0], '--max-new-tokens', '4', '--seed', '1']);
    assert.equal(gen.status, 0, gen.stderr);
    assert.ok(gen.stdout.trim().length > 0);

    const done2 = await waitFor(s, secondId, ended, 'ended');
    assert.equal(done2.state, 'succeeded', JSON.stringify(done2));
    assert.ok(done2.startedAt! >= job.finishedAt!, 'the second job started after the first ended');

    const list = (await request(s, 'GET', '/v1/jobs')).body as { object: string; data: JobView[] };
    assert.equal(list.object, 'list');
    assert.deepEqual(list.data.map((j) => [j.id, j.state]).sort(), [['faq', 'succeeded'], [secondId, 'succeeded'], [thirdId, 'cancelled']].sort());

    // A finished job cannot be resumed.
    const resumed = await request(s, 'POST', '/v1/jobs/faq/resume');
    assert.equal(resumed.status, 409);
    assert.match((resumed.body as ErrorBody).error.message, /succeeded/);
  });

  test('cancel stops a training job as Ctrl-C does (a checkpoint is saved); resume finishes it', async () => {
    const r = await postJob(s, { ...tiny, name: 'stopme', maxSteps: 150, saveInterval: 1000 }, { data: qa, name: 'pairs.qa.txt' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await waitFor(s, 'stopme', training, 'training');
    const c = await request(s, 'POST', '/v1/jobs/stopme/cancel');
    assert.equal(c.status, 200);
    const job = c.body as JobView;
    assert.equal(job.state, 'cancelled', JSON.stringify(job));
    assert.ok(job.step! < 150, `stopped early (step ${job.step})`);
    const dir = path.join(s.runsDir, 'stopme');
    const latest = fs.readFileSync(path.join(dir, 'latest'), 'utf8').trim();
    assert.equal(latest, `step-${String(job.step).padStart(6, '0')}`, 'the checkpoint of the step it stopped at');
    assert.equal((await request(s, 'POST', '/v1/jobs/stopme/cancel')).status, 409);

    const res = await request(s, 'POST', '/v1/jobs/stopme/resume');
    assert.equal(res.status, 200);
    const done = await waitFor(s, 'stopme', ended, 'ended');
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.equal(done.step, 150);

    // The stream tells the whole story once: no record sent twice across the resume.
    const history = await events(s, 'stopme');
    const states = history.filter((e) => e.event === 'state').map((e) => e.data.state);
    assert.deepEqual([...new Set(states)], ['queued', 'running', 'cancelled', 'succeeded']);
    const trainSteps = history.filter((e) => e.event === 'metrics' && e.data.type === 'train').map((e) => e.data.step as number);
    assert.deepEqual(trainSteps, Array.from({ length: 150 }, (_, i) => i + 1));
  });

  test('bad requests: no file, bad config, unknown keys, unknown or escaping ids, a file that does not convert', async () => {
    const small = { data: csv.slice(0, 500), name: 'a.csv' };
    let r = await postJob(s, { ...tiny }, null);
    assert.equal(r.status, 400);
    assert.equal((r.body as ErrorBody).error.param, 'file');

    r = await postJob(s, '{"maxSteps": 3', small);
    assert.equal(r.status, 400);
    assert.equal((r.body as ErrorBody).error.param, 'config');
    assert.match((r.body as ErrorBody).error.message, /^config: not valid JSON/);

    r = await postJob(s, { maxSteps: 3, learningrate: 1, bogus: true }, small);
    assert.equal(r.status, 400);
    assert.match((r.body as ErrorBody).error.message, /unknown keys learningrate, bogus/);

    r = await postJob(s, { maxSteps: '3' }, small);
    assert.equal(r.status, 400);
    assert.equal((r.body as ErrorBody).error.param, 'config.maxSteps');

    r = await postJob(s, { checkpointDir: '/tmp/elsewhere' }, small);
    assert.equal(r.status, 400, 'paths are the server\'s to choose');

    r = await postJob(s, { name: '../escape' }, small);
    assert.equal(r.status, 400);
    assert.equal((r.body as ErrorBody).error.param, 'config.name');

    r = await postJob(s, { name: 'faq' }, small);
    assert.equal(r.status, 409, 'a name already taken');

    for (const p of ['/v1/jobs/nope', '/v1/jobs/..', '/v1/jobs/..%2F..%2Fetc', '/v1/jobs/%2Fetc%2Fpasswd', '/v1/jobs/../events', '/v1/jobs/..%2Ffaq/events']) {
      const g = await rawGet(s, p);
      assert.equal(g.status, 404, p);
      assert.equal(g.body.error.type, 'not_found_error', p);
    }
    assert.equal((await request(s, 'POST', '/v1/jobs/..%2Ffaq/resume')).status, 404);

    r = await postJob(s, { ...tiny, name: 'badcsv' }, { data: 'foo,bar\n1,2\n', name: 'bad.csv' });
    assert.equal(r.status, 201);
    const job = await waitFor(s, 'badcsv', ended, 'ended');
    assert.equal(job.state, 'failed');
    assert.equal(job.stage, 'convert');
    assert.match(job.error ?? '', /^gptmed-convert: error: badcsv\/upload\/bad\.csv: no question\/answer columns recognised/);
  });
});

test('an upload over --max-upload-mb is refused with 413 and leaves nothing on disk', async () => {
  const runsDir = path.join(work, 'small-runs');
  const s = await serve(runsDir, 0.01);
  try {
    const r = await postJob(s, { ...tiny }, { data: csv + csv, name: 'big.csv' });
    assert.equal(r.status, 413);
    assert.equal((r.body as ErrorBody).error.param, 'file');
    assert.deepEqual(fs.readdirSync(runsDir), []);
    assert.deepEqual((await request(s, 'GET', '/v1/jobs')).body, { object: 'list', data: [] });
  } finally {
    await s.app.close();
  }
});

test('closing the server interrupts the running job; a new server lists it and resumes it', async () => {
  const runsDir = path.join(work, 'restart-runs');
  const s1 = await serve(runsDir);
  let closed = false;
  try {
    const r = await postJob(s1, { ...tiny, name: 'longer', maxSteps: 150, saveInterval: 1000 }, { data: qa, name: 'pairs.qa.txt' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const queued = await postJob(s1, { ...tiny, name: 'waiting', maxSteps: 10 }, { data: qa, name: 'pairs.qa.txt' });
    assert.equal((queued.body as JobView).state, 'queued');
    await waitFor(s1, 'longer', training, 'training');
    await s1.app.close();
    closed = true;
  } finally {
    if (!closed) await s1.app.close();
  }
  const onDisk = JSON.parse(fs.readFileSync(path.join(runsDir, 'longer', 'job.json'), 'utf8')) as { state: string; stage: string };
  assert.deepEqual([onDisk.state, onDisk.stage], ['interrupted', 'train']);
  assert.ok(fs.existsSync(path.join(runsDir, 'longer', 'latest')), 'a checkpoint was saved on the way out');

  const s2 = await serve(runsDir);
  try {
    // The queued job starts by itself; the interrupted one waits to be resumed.
    const list = (await request(s2, 'GET', '/v1/jobs')).body as { data: JobView[] };
    assert.equal(list.data.find((j) => j.id === 'longer')?.state, 'interrupted');
    const resumed = await request(s2, 'POST', '/v1/jobs/longer/resume');
    assert.equal(resumed.status, 200);
    assert.equal((await waitFor(s2, 'waiting', ended, 'ended')).state, 'succeeded');
    const done = await waitFor(s2, 'longer', ended, 'ended');
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.equal(done.step, 150);
  } finally {
    await s2.app.close();
  }
});
