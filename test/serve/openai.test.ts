/**
 * gptmed-serve's inference routes as OpenAI's own client sees them (the `openai` package): the model
 * list, chat and text completions plain and streamed, conversations, stop strings, samples, a client that
 * disconnects, the API key, the concurrency limit, runs that appear while the server runs, and the cache
 * of loaded models. Every server listens on 127.0.0.1, port 0.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { encodeConversation, fitPrompt, generate, loadModel, type LoadedModel } from '../../src/generate/index.js';
import { inferenceStats } from '../../src/serve/inference.js';
import { startServer, type ServeOptions } from '../../src/serve/server.js';
import { tempDir } from '../helpers.js';
import { post, serveModels, slowGreedy, type ServeModels } from './serve-models.js';

/** gptmed's own sampler fields, turned off (typed `object`: the openai client's types do not know them). */
const plainGreedy: object = { top_k: 0, repetition_penalty: 1, no_repeat_ngram: 0 };

let models: ServeModels;
let lm: LoadedModel;
let serve: ServeOptions;
let app: FastifyInstance;
let url: string;
let client: OpenAI;
const others: FastifyInstance[] = [];

const q0 = 'African: Algeria -- capital?';
const q1 = 'African: Angola -- capital?';

function options(runsDir: string, extra: Partial<ServeOptions> = {}): ServeOptions {
  return { runsDir, checkpoints: [], host: '127.0.0.1', port: 0, maxConcurrent: 2, maxUploadMb: 10, logger: false, ...extra };
}

async function waitFor(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

before(async () => {
  models = await serveModels(tempDir('gptmed-serve-'));
  lm = await loadModel({ checkpoint: path.join(models.runsDir, 'quiz') });
  serve = options(models.runsDir);
  ({ app, url } = await startServer(serve));
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 30_000 });
});

after(async () => {
  await app?.close();
  for (const other of others) await other.close();
  lm?.dispose();
});

test('GET /v1/models lists every run with a checkpoint, with gptmed fields from the manifest', async () => {
  const list = await client.models.list();
  const byId = new Map(list.data.map((m) => [m.id, m as unknown as Record<string, unknown>]));
  assert.deepEqual([...byId.keys()].sort(), ['quiz', 'slow']);
  const quiz = byId.get('quiz')!;
  assert.equal(quiz.object, 'model');
  assert.equal(quiz.owned_by, 'gptmed');
  assert.equal(typeof quiz.created, 'number');
  assert.equal(quiz.step, 60);
  assert.equal(quiz.parameters, lm.manifest.parameterCount);
  assert.equal(quiz.context_length, 40);
  assert.equal((quiz.tokenizer as { sha256: string }).sha256, lm.tokenizer.sha256);
  assert.equal((await client.models.retrieve('slow')).id, 'slow');
});

test('a greedy chat completion is gptmed-generate\'s greedy answer, with usage', async () => {
  for (const q of [q0, 'European: Chad -- capital?']) {
    const expected = await generate(lm, q, { preset: 'greedy' });
    const r = await client.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q }], temperature: 0, top_p: 1, ...plainGreedy });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'quiz');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, expected.text);
    assert.equal(r.choices[0].finish_reason, expected.answers[0].stop === 'eos' ? 'stop' : 'length');
    assert.equal(r.usage?.prompt_tokens, expected.promptTokens);
    assert.equal(r.usage?.completion_tokens, expected.answers[0].generatedTokens);
    assert.equal(r.usage?.total_tokens, expected.promptTokens + expected.answers[0].generatedTokens);
  }
  const quizAnswer = await client.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q0 }], temperature: 0 });
  assert.equal(quizAnswer.choices[0].message.content, 'Algiers');
  assert.equal(quizAnswer.choices[0].finish_reason, 'stop');
});

test('a streamed chat completion: its deltas add up to the plain answer, then finish_reason and [DONE]', async () => {
  const plain = await client.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q1 }], temperature: 0 });
  const stream = await client.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q1 }], temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let role: string | undefined;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined | null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    role ??= choice.delta.role;
    text += choice.delta.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, plain.choices[0].message.content);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.deepEqual(usage, plain.usage);
  assert.ok(chunks >= 3);
});

test('text completions, plain and streamed', async () => {
  const expected = await generate(lm, q1, { preset: 'greedy' });
  const r = await client.completions.create({ model: 'quiz', prompt: q1, temperature: 0, ...plainGreedy });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text, expected.text);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const stream = await client.completions.create({ model: 'quiz', prompt: q1, temperature: 0, ...plainGreedy, stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0].text;
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(text, expected.text);
  assert.equal(finish, 'stop');
});

test('earlier turns go before the question as Q/A pairs: prompt_tokens counts the framed conversation', async () => {
  const history = [{ question: q0, answer: 'Algiers' }];
  const ids = encodeConversation(lm.tokenizer, q1, history);
  const maxTokens = 3;
  assert.equal(fitPrompt(ids, 40, maxTokens).dropped, 0, 'the conversation must fit the context for this test');
  const r = await client.chat.completions.create({
    model: 'quiz',
    messages: [
      { role: 'system', content: 'left out: no system prompt in Q&A training' },
      { role: 'user', content: q0 },
      { role: 'assistant', content: 'Algiers' },
      { role: 'user', content: q1 },
    ],
    temperature: 0,
    max_tokens: maxTokens,
  });
  assert.equal(r.usage?.prompt_tokens, ids.length);
  const alone = await client.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q1 }], temperature: 0, max_tokens: maxTokens });
  assert.ok(alone.usage!.prompt_tokens < ids.length);
  const expected = await generate(lm, q1, { preset: 'greedy', maxNewTokens: maxTokens, history });
  assert.equal(r.choices[0].message.content, expected.text);
});

test('stop strings cut the answer before them, finish_reason "stop", plain and streamed', async () => {
  const r = await client.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q0 }], temperature: 0, stop: ['ier', 'zzz'] });
  assert.equal(r.choices[0].message.content, 'Alg');
  assert.equal(r.choices[0].finish_reason, 'stop');
  const stream = await client.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q0 }], temperature: 0, stop: 'ier', stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, 'Alg');
  assert.equal(finish, 'stop');
});

test('n = 2 with a seed: two different samples, the same on every call', async () => {
  const ask = () => client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: q0 }], n: 2, seed: 7, temperature: 1, max_tokens: 12 });
  const [a, b] = [await ask(), await ask()];
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1]);
  assert.notEqual(a.choices[0].message.content, a.choices[1].message.content);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.equal(a.usage?.completion_tokens, 24);
});

test('a client that disconnects mid-stream stops its generation at once', async () => {
  const before = inferenceStats(serve)!.generatedTokens;
  const plain = await client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: q0 }], ...slowGreedy, max_tokens: 400 });
  assert.equal(plain.choices[0].finish_reason, 'length', 'the slow model must run to max_tokens for this test');
  assert.equal(inferenceStats(serve)!.generatedTokens - before, 400);

  const controller = new AbortController();
  const stream = await client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: q0 }], ...slowGreedy, max_tokens: 400, stream: true }, { signal: controller.signal });
  const start = inferenceStats(serve)!.generatedTokens;
  let chunks = 0;
  // The client ends its iteration quietly when aborted.
  for await (const _ of stream) if (++chunks === 3) controller.abort();
  assert.equal(chunks, 3);
  await waitFor('the generation stopped', () => inferenceStats(serve)!.running === 0);
  const spent = inferenceStats(serve)!.generatedTokens - start;
  assert.ok(spent < 100, `${spent} tokens generated after the client left`);
  const next = await client.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q0 }], temperature: 0 });
  assert.equal(next.choices[0].message.content, 'Algiers');
});

test('--api-key: 401 without the key or with a wrong one, 200 with it', async () => {
  const keyed = await startServer(options(models.runsDir, { apiKey: 'sesame' }));
  others.push(keyed.app);
  const noKey = await fetch(`${keyed.url}/v1/models`);
  assert.equal(noKey.status, 401);
  assert.equal(((await noKey.json()) as { error: { type: string } }).error.type, 'authentication_error');
  const wrong = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'open', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (err: unknown) => err instanceof OpenAI.AuthenticationError && err.status === 401);
  const right = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'sesame', maxRetries: 0 });
  assert.equal((await right.models.list()).data.length, 2);
  const r = await right.chat.completions.create({ model: 'quiz', messages: [{ role: 'user', content: q0 }], temperature: 0 });
  assert.equal(r.choices[0].message.content, 'Algiers');
});

test('past --max-concurrent and the queue, a burst gets 429 with Retry-After; the rest are answered', async () => {
  const limited = options(models.runsDir, { maxConcurrent: 1 });
  const server = await startServer(limited);
  others.push(server.app);
  const body = { model: 'slow', messages: [{ role: 'user', content: q0 }], ...slowGreedy, max_tokens: 40 };
  const replies = await Promise.all(Array.from({ length: 10 }, () => post(`${server.url}/v1/chat/completions`, body)));
  const ok = replies.filter((r) => r.status === 200);
  const busy = replies.filter((r) => r.status === 429);
  assert.equal(ok.length + busy.length, 10, JSON.stringify(replies.map((r) => r.status)));
  assert.equal(ok.length, 5, 'one running and four (4 x --max-concurrent) waiting');
  for (const r of busy) {
    assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
    assert.equal(r.json.error.type, 'rate_limit_error');
  }
  for (const r of ok) assert.equal(r.json.choices[0].finish_reason, 'length');
  assert.deepEqual(inferenceStats(limited), { ...inferenceStats(limited)!, running: 0, queued: 0 });
});

test('a run copied into --runs-dir is served without a restart; unknown and outside ids are 404', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'fresh', messages: [{ role: 'user', content: q0 }] }), (err: unknown) => err instanceof OpenAI.NotFoundError);
  fs.cpSync(path.join(models.runsDir, 'quiz'), path.join(models.runsDir, 'fresh'), { recursive: true });
  assert.ok((await client.models.list()).data.some((m) => m.id === 'fresh'));
  const r = await client.chat.completions.create({ model: 'fresh', messages: [{ role: 'user', content: q0 }], temperature: 0 });
  assert.equal(r.choices[0].message.content, 'Algiers');
  for (const id of ['../runs/quiz', path.join(models.runsDir, 'quiz'), '.', '..']) {
    const e = await post(`${url}/v1/chat/completions`, { model: id, messages: [{ role: 'user', content: q0 }] });
    assert.equal(e.status, 404, id);
    assert.equal(e.json.error.param, 'model');
  }
});

test('the cache of loaded models evicts the least recently used, never one that is generating', async () => {
  for (const id of ['c1', 'c2', 'c3', 'c4', 'c5']) fs.cpSync(path.join(models.runsDir, 'quiz'), path.join(models.runsDir, id), { recursive: true });
  // A long stream on "slow" while five other models load (and evict it) through the second slot.
  const long = client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: q0 }], ...slowGreedy, max_tokens: 480, stream: true });
  await waitFor('the stream started', () => inferenceStats(serve)!.running === 1);
  for (const id of ['c1', 'c2', 'c3', 'c4', 'c5']) {
    const r = await client.chat.completions.create({ model: id, messages: [{ role: 'user', content: q0 }], temperature: 0 });
    assert.equal(r.choices[0].message.content, 'Algiers', id);
    assert.ok(inferenceStats(serve)!.loadedModels <= 4);
  }
  let text = '';
  let finish: string | null = null;
  for await (const chunk of await long) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'length');
  assert.ok(text.length > 0);
  const again = await client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: q0 }], ...slowGreedy, max_tokens: 5 });
  assert.equal(again.choices[0].finish_reason, 'length');
});

test('closing the server ends an open stream cleanly: finish_reason "length", then [DONE]', async () => {
  const closing = await startServer(options(models.runsDir));
  const c = new OpenAI({ baseURL: `${closing.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const stream = await c.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: q0 }], ...slowGreedy, max_tokens: 400, stream: true });
  let finish: string | null = null;
  let chunks = 0;
  let closed: Promise<void> | undefined;
  for await (const chunk of stream) {
    if (++chunks === 3) closed = closing.app.close();
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  const t0 = Date.now();
  await closed;
  assert.ok(Date.now() - t0 < 1000, `the close took ${Date.now() - t0} ms after the stream ended`);
  assert.equal(finish, 'length');
  assert.ok(chunks < 300, `${chunks} chunks: the stream ran on after close`);
});
