/**
 * A model's files over HTTP, checked by their real consumers: the checkpoint .tar unpacked by GNU tar gives
 * gptmed-generate the same greedy answers as the run it came from; an export downloaded over HTTP is byte
 * for byte what gptmed-export writes for the same checkpoint; an hf export arrives as a .tar of its files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { startServer } from '../../src/serve/server.js';
import { runCli, tempDir } from '../helpers.js';
import { post, serveModels, type ServeModels } from './serve-models.js';

const work = tempDir('gptmed-model-files-');
let models: ServeModels;
let app: FastifyInstance;
let url: string;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function download(route: string): Promise<{ status: number; type: string | null; disposition: string | null; body: Buffer }> {
  const r = await fetch(`${url}${route}`, { signal: AbortSignal.timeout(30_000) });
  return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), body: Buffer.from(await r.arrayBuffer()) };
}

function untar(archive: Buffer, into: string): void {
  fs.mkdirSync(into, { recursive: true });
  const file = path.join(into, 'archive.tar');
  fs.writeFileSync(file, archive);
  const r = spawnSync('tar', ['-xf', file, '-C', into], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  fs.rmSync(file);
}

function greedy(checkpoint: string, question: string): string {
  const r = runCli('generate', ['--checkpoint', checkpoint, '--prompt', question, '--preset', 'greedy', '--max-new-tokens', '40']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('model files over HTTP', { timeout: 240_000 }, () => {
  before(async () => {
    models = await serveModels(work);
    ({ app, url } = await startServer({ runsDir: models.runsDir, checkpoints: [models.tiny.runDir], host: '127.0.0.1', port: 0, maxConcurrent: 1, maxUploadMb: 1, logger: false }));
  });
  after(async () => {
    await app?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('GET /v1/models/:id/checkpoint: a run directory that loads anywhere, with the same answers', async () => {
    const r = await download('/v1/models/slow/checkpoint');
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/x-tar');
    assert.match(r.disposition ?? '', /^attachment; filename="slow-step-000000\.tar"$/);
    const into = path.join(work, 'unpacked');
    untar(r.body, into);
    assert.deepEqual(fs.readdirSync(path.join(into, 'slow')).sort(), ['best', 'latest', 'step-000000', 'tokenizer.model']);
    // The original tokenizer (named by an absolute path in this old-style manifest) is gone: the copy serves.
    const tokenizerAway = `${models.tiny.tokenizerPath}.away`;
    fs.renameSync(models.tiny.tokenizerPath, tokenizerAway);
    let unpacked: string;
    try {
      unpacked = greedy(path.join(into, 'slow'), models.tiny.pairs[0].question);
    } finally {
      fs.renameSync(tokenizerAway, models.tiny.tokenizerPath);
    }
    assert.equal(unpacked, greedy(models.slowDir, models.tiny.pairs[0].question));
  });

  test('exports: gguf made once, listed, downloaded byte-identical to gptmed-export; hf as a .tar', async () => {
    const made = await post(`${url}/v1/models/slow/exports`, { format: 'gguf' });
    assert.equal(made.status, 201);
    assert.equal(made.json.file, 'step-000000-f32.gguf');
    assert.equal(made.json.url, '/v1/models/slow/exports/step-000000-f32.gguf');
    const again = await post(`${url}/v1/models/slow/exports`, { format: 'gguf', dtype: 'f32' });
    assert.equal(again.status, 200, 'the same export is reused');
    const got = await download(made.json.url);
    assert.equal(got.status, 200);
    assert.equal(got.body.length, made.json.bytes);
    const cli = path.join(work, 'cli.gguf');
    const r = runCli('export', ['--checkpoint', models.slowDir, '--format', 'gguf', '-o', cli]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(sha(got.body), sha(fs.readFileSync(cli)));

    const hf = await post(`${url}/v1/models/slow/exports`, { format: 'hf', dtype: 'f16' });
    assert.equal(hf.status, 201);
    const tar = await download(hf.json.url);
    assert.equal(tar.type, 'application/x-tar');
    const into = path.join(work, 'hf');
    untar(tar.body, into);
    assert.deepEqual(fs.readdirSync(path.join(into, 'slow-step-000000-f16-hf')).sort(), ['README.md', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.model']);

    const listed = (await (await fetch(`${url}/v1/models/slow/exports`)).json()) as { data: Array<{ file: string; format: string; dtype: string }> };
    assert.deepEqual(listed.data.map((e) => `${e.file} ${e.format} ${e.dtype}`), ['step-000000-f16-hf hf f16', 'step-000000-f32.gguf gguf f32']);
  });

  test('refusals: unknown model or export, bad body, a --checkpoint model', async () => {
    const cases: Array<[string, Promise<{ status: number; json: any }>, number, string | null, RegExp]> = [
      ['unknown model', post(`${url}/v1/models/nope/exports`, { format: 'gguf' }), 404, 'model', /^The model 'nope' does not exist/],
      ['bad format', post(`${url}/v1/models/slow/exports`, { format: 'onnx' }), 400, 'format', /^format: /],
      ['unknown field', post(`${url}/v1/models/slow/exports`, { format: 'gguf', merge: true }), 400, 'merge', /^merge: /],
      ['outside runs', post(`${url}/v1/models/${path.basename(models.tiny.runDir)}/exports`, { format: 'gguf' }), 409, 'id', /outside --runs-dir; export it with gptmed-export$/],
    ];
    for (const [what, pending, status, param, message] of cases) {
      const r = await pending;
      assert.equal(r.status, status, what);
      assert.equal(r.json.error.param, param, what);
      assert.match(r.json.error.message, message, what);
    }
    const notFound: Array<[string, string]> = [
      ['/v1/models/slow/exports/step-000000-f32.bin', 'not_found'],
      ['/v1/models/slow/exports/..%2F..%2Fbest', 'not_found'],
      ['/v1/models/nope/checkpoint', 'model_not_found'],
      ['/v1/models/..%2Fslow/checkpoint', 'model_not_found'],
    ];
    for (const [route, code] of notFound) {
      const r = await download(route);
      assert.equal(r.status, 404, route);
      assert.equal(JSON.parse(r.body.toString()).error.code, code, route);
    }
  });
});
