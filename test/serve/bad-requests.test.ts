/**
 * Bad requests to the inference routes, sent with plain fetch (OpenAI's client checks some itself): each
 * is answered with the right 4xx and an error in OpenAI's shape that names the field at fault.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { startServer } from '../../src/serve/server.js';
import { tempDir } from '../helpers.js';
import { post, serveModels } from './serve-models.js';

let app: FastifyInstance;
let url: string;
let runsDir: string;

before(async () => {
  ({ runsDir } = await serveModels(tempDir('gptmed-serve-bad-')));
  ({ app, url } = await startServer({ runsDir, checkpoints: [], host: '127.0.0.1', port: 0, maxConcurrent: 2, maxUploadMb: 10, logger: false }));
});

after(async () => {
  await app?.close();
});

const user = (content: unknown) => [{ role: 'user', content }];
const chat = (extra: Record<string, unknown>) => ({ model: 'quiz', messages: user('African: Algeria -- capital?'), ...extra });

/** [what, route, body, status, param] */
const cases: Array<[string, string, unknown, number, string | null]> = [
  ['missing model', 'chat/completions', { messages: user('hi') }, 400, 'model'],
  ['unknown model', 'chat/completions', chat({ model: 'nope' }), 404, 'model'],
  ['a model id going up', 'chat/completions', chat({ model: '../runs/quiz' }), 404, 'model'],
  ['an absolute model path', 'chat/completions', chat({ model: '/etc' }), 404, 'model'],
  ['missing messages', 'chat/completions', { model: 'quiz' }, 400, 'messages'],
  ['empty messages', 'chat/completions', chat({ messages: [] }), 400, 'messages'],
  ['an unknown role', 'chat/completions', chat({ messages: [{ role: 'wizard', content: 'hi' }] }), 400, 'messages[0].role'],
  ['a message without content', 'chat/completions', chat({ messages: [{ role: 'user' }] }), 400, 'messages[0].content'],
  ['the last message not the user\'s', 'chat/completions', chat({ messages: [...user('hi'), { role: 'assistant', content: 'hello' }] }), 400, 'messages[1].role'],
  ['an assistant turn first', 'chat/completions', chat({ messages: [{ role: 'assistant', content: 'hello' }, ...user('hi')] }), 400, 'messages[0].role'],
  ['an empty question', 'chat/completions', chat({ messages: user('  \n ') }), 400, 'messages[0].content'],
  ['temperature -1', 'chat/completions', chat({ temperature: -1 }), 400, 'temperature'],
  ['temperature as a string', 'chat/completions', chat({ temperature: '0.5' }), 400, 'temperature'],
  ['top_p 2', 'chat/completions', chat({ top_p: 2 }), 400, 'top_p'],
  ['top_p 0', 'chat/completions', chat({ top_p: 0 }), 400, 'top_p'],
  ['max_tokens 0', 'chat/completions', chat({ max_tokens: 0 }), 400, 'max_tokens'],
  ['max_tokens 1.5', 'chat/completions', chat({ max_tokens: 1.5 }), 400, 'max_tokens'],
  ['n 0', 'chat/completions', chat({ n: 0 }), 400, 'n'],
  ['n 100', 'chat/completions', chat({ n: 100 }), 400, 'n'],
  ['top_k -1', 'chat/completions', chat({ top_k: -1 }), 400, 'top_k'],
  ['an empty stop string', 'chat/completions', chat({ stop: [''] }), 400, 'stop'],
  ['five stop strings', 'chat/completions', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop'],
  ['an unknown field', 'chat/completions', chat({ temprature: 0.5 }), 400, 'temprature'],
  ['an unsupported OpenAI field set', 'chat/completions', chat({ presence_penalty: 0.5 }), 400, 'presence_penalty'],
  ['tools', 'chat/completions', chat({ tools: [{ type: 'function', function: { name: 'f' } }] }), 400, 'tools'],
  ['stream not a boolean', 'chat/completions', chat({ stream: 'yes' }), 400, 'stream'],
  ['stream as 1', 'chat/completions', chat({ stream: 1 }), 400, 'stream'],
  ['a preset gptmed does not have', 'chat/completions', chat({ preset: 'wild' }), 400, 'preset'],
  ['a question over 1 MiB', 'chat/completions', chat({ messages: user('x'.repeat((1 << 20) + 1)) }), 400, 'messages'],
  ['prompt not a string', 'completions', { model: 'quiz', prompt: ['a', 'b'] }, 400, 'prompt'],
  ['missing prompt', 'completions', { model: 'quiz' }, 400, 'prompt'],
  ['echo on', 'completions', { model: 'quiz', prompt: 'hi', echo: true }, 400, 'echo'],
  ['an empty prompt', 'completions', { model: 'quiz', prompt: '' }, 400, 'prompt'],
  ['a body that is not an object', 'chat/completions', [1, 2], 400, null],
];

for (const [what, route, body, status, param] of cases) {
  test(`${what}: ${status} naming ${param ?? 'nothing'}`, async () => {
    const r = await post(`${url}/v1/${route}`, body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    assert.equal(typeof r.json.error.message, 'string');
    assert.equal(typeof r.json.error.type, 'string');
    assert.equal(r.json.error.param, param, r.json.error.message);
    if (param) assert.ok(r.json.error.message.includes(param.split('[')[0]), r.json.error.message);
  });
}

test('a body that is not JSON: 400 in OpenAI\'s shape', async () => {
  const r = await post(`${url}/v1/chat/completions`, '{"model": "quiz", ');
  assert.equal(r.status, 400);
  assert.equal(r.json.error.type, 'invalid_request_error');
});

test('a body of another content type: 415', async () => {
  const r = await post(`${url}/v1/chat/completions`, 'model=quiz', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(r.status, 415);
  assert.equal(r.json.error.type, 'invalid_request_error');
});

test('a body over the inference limit: 413', async () => {
  const r = await post(`${url}/v1/chat/completions`, chat({ messages: user('x'.repeat(9 << 20)) }));
  assert.equal(r.status, 413);
  assert.equal(r.json.error.type, 'invalid_request_error');
});

test('an unknown route and GET on a POST route: 404', async () => {
  for (const [method, route] of [['POST', '/v1/chat/complete'], ['GET', '/v1/chat/completions'], ['GET', '/v1/completions']]) {
    const r = await fetch(`${url}${route}`, { method, ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}) });
    assert.equal(r.status, 404, `${method} ${route}`);
    assert.equal(((await r.json()) as { error: { type: string } }).error.type, 'not_found_error');
  }
});

test('GET /v1/models/:id of an unknown or outside id: 404 naming model', async () => {
  for (const id of ['nope', encodeURIComponent('../runs'), encodeURIComponent(path.join(runsDir, 'quiz'))]) {
    const r = await fetch(`${url}/v1/models/${id}`);
    assert.equal(r.status, 404, id);
    assert.equal(((await r.json()) as { error: { param: string } }).error.param, 'model');
  }
});
