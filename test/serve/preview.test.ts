/**
 * The routes the web page plans a job with: POST /v1/datasets/preview (what conversion makes of a file:
 * its counts are gptmed-convert's own, the pairs are those it writes, skipped rows carry their lines),
 * GET /v1/options (the settings with the defaults the commands use) and POST /v1/jobs/estimate.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readQaFile, type QaPair } from '../../src/convert/qa-format.js';
import { pairText } from '../../src/convert/pair-text.js';
import type { DatasetPreview as Preview } from '../../src/dataset/preview.js';
import { countParameters, loadPreset } from '../../src/model/index.js';
import { startServer } from '../../src/serve/server.js';
import { fixturesDir, runCli, tempDir } from '../helpers.js';

const work = tempDir('gptmed-preview-');
let app: FastifyInstance;
let url: string;


async function preview(data: string | Buffer, name: string, config?: object): Promise<{ status: number; body: any }> {
  const form = new FormData();
  form.append('file', new Blob([data]), name);
  if (config) form.append('config', JSON.stringify(config));
  const r = await fetch(`${url}/v1/datasets/preview`, { method: 'POST', body: form, signal: AbortSignal.timeout(20_000) });
  return { status: r.status, body: await r.json() };
}

async function postJson(route: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(120_000) });
  return { status: r.status, body: await r.json() };
}

/** What gptmed-convert itself makes of the file: its pairs and its summary line. */
async function converted(file: string, flags: string[] = []): Promise<{ pairs: QaPair[]; summary: string }> {
  const out = path.join(work, `${path.basename(file)}.${Math.random().toString(36).slice(2)}.qa.txt`);
  const r = runCli('convert', [file, '--output', out, '--quiet', ...flags]);
  assert.equal(r.status, 0, r.stderr);
  const pairs: QaPair[] = [];
  for await (const p of readQaFile(out)) pairs.push(p);
  return { pairs, summary: r.stdout };
}

describe('planning a job: preview, options, estimate', { timeout: 180_000 }, () => {
  before(async () => {
    ({ app, url } = await startServer({ runsDir: path.join(work, 'runs'), checkpoints: [], host: '127.0.0.1', port: 0, maxConcurrent: 1, maxUploadMb: 5, logger: false }));
  });
  after(async () => {
    await app?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('a CSV with bad rows: the counts and pairs are gptmed-convert\'s, the skipped rows are named by line', async () => {
    const csv = ['question,answer', 'What is 2+2?,Four.', 'Empty answer?,', '"A question over', 'two lines?",Yes it is.', 'only one column', 'What is 2+2?,Four.', 'Why?,Because the sky is blue and so on.'].join('\n');
    const file = path.join(work, 'faq.csv');
    fs.writeFileSync(file, `${csv}\n`);
    const r = await preview(csv, 'faq.csv', { dedupe: true });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = r.body as Preview;
    const cli = await converted(file, ['--dedupe']);
    assert.equal(p.format, 'csv');
    assert.equal(p.pairs, cli.pairs.length);
    assert.equal(p.pairs, 3);
    assert.match(cli.summary, new RegExp(`${p.rowsRead} rows read \\(csv\\), ${p.pairs} pairs written`));
    assert.deepEqual(p.skipped, { 'empty answer': 1, 'missing column': 1, duplicate: 1 });
    assert.deepEqual(p.skippedRows, [
      { at: 'line 3', reason: 'empty answer' },
      { at: 'line 6', reason: 'missing column' },
      { at: 'line 7', reason: 'duplicate' },
    ]);
    assert.deepEqual(p.firstPairs.map((x) => ({ question: x.question, answer: x.answer })), cli.pairs);
    assert.deepEqual(p.firstPairs.map((x) => x.text), cli.pairs.map(pairText));
    // Lengths in words of the text trained on ("Q: Why?\nA: Because the sky ..." is 11).
    assert.deepEqual([p.lengths.min, p.lengths.p50, p.lengths.max], [6, 10, 11]);
    assert.equal(p.lengths.histogram.reduce((n, b) => n + b.count, 0), 3);
  });

  test('every reader: JSONL by line, JSON by element, SQLite by row, Q&A text by line; 10 pairs shown of many', async () => {
    const jsonl = fs.readFileSync(path.join(fixturesDir, 'convert', 'question-answer.jsonl'));
    let r = await preview(Buffer.concat([jsonl, Buffer.from('{"question": "no answer"}\n')]), 'qa.jsonl');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const lines = jsonl.toString().trimEnd().split('\n').length;
    assert.deepEqual(r.body.skippedRows.at(-1), { at: `line ${lines + 1}`, reason: 'empty answer' });

    r = await preview(JSON.stringify([{ question: 'a?', answer: 'b.' }, { question: 'c?', answer: '' }]), 'x.json');
    assert.deepEqual([r.body.format, r.body.pairs, r.body.skippedRows], ['json', 1, [{ at: 'element 2', reason: 'empty answer' }]]);

    const db = path.join(fixturesDir, 'convert', 'latex.db');
    r = await preview(fs.readFileSync(db), 'latex.db', { table: 'phrases', questionCol: 'tabkeys', answerCol: 'phrase' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const fromCli = await converted(db, ['--table', 'phrases', '--question-col', 'tabkeys', '--answer-col', 'phrase']);
    assert.deepEqual([r.body.format, r.body.pairs], ['sqlite', fromCli.pairs.length]);

    const qa = `${Array.from({ length: 30 }, (_, i) => `Q: question ${i}?\nA: answer ${i}.`).join('\n\n')}\n\nA: an answer alone\n`;
    r = await preview(qa, 'data.qa.txt');
    assert.deepEqual([r.body.format, r.body.pairs, r.body.firstPairs.length], ['qa', 30, 10]);
    assert.deepEqual(r.body.skippedRows, [{ at: 'line 91', reason: 'answer (A:) without a question (Q:) before it' }]);
  });

  test('refusals name the field: no file, a job setting, a file that does not convert (named as uploaded)', async () => {
    const form = new FormData();
    form.append('config', '{}');
    const noFile = await fetch(`${url}/v1/datasets/preview`, { method: 'POST', body: form });
    assert.equal(noFile.status, 400);
    assert.equal(((await noFile.json()) as any).error.param, 'file');
    let r = await preview('a,b\n', 'a.csv', { maxSteps: 5 });
    assert.deepEqual([r.status, r.body.error.param], [400, 'config.maxSteps']);
    r = await preview('foo,bar\n1,2\n', 'mine.csv');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'file');
    assert.match(r.body.error.message, /^mine\.csv: no question\/answer columns recognised/);
    assert.deepEqual(fs.readdirSync(path.join(work, 'runs')), [], 'nothing is kept');
  });

  test('GET /v1/options: each setting with the default its stage uses, the presets with their parameter counts', async () => {
    const o = (await (await fetch(`${url}/v1/options`)).json()) as any;
    const setting = (key: string): any => o.training.settings.find((s: { key: string }) => s.key === key);
    const trainJson = JSON.parse(fs.readFileSync(path.join(fixturesDir, '..', '..', 'configs', 'train.json'), 'utf8'));
    assert.equal(setting('learningRate').default, trainJson.learningRate);
    assert.equal(setting('numEpochs').default, trainJson.numEpochs);
    assert.equal(setting('vocabSize').default, 8000);
    assert.equal(setting('maxLength').default, 512);
    assert.deepEqual(setting('modelSize').choices, ['tiny', 'small', 'medium']);
    assert.equal(setting('maxSteps').flag, '--max-steps');
    assert.doesNotMatch(setting('batchSize').description, /default/);
    assert.deepEqual(setting('seed').stages, ['convert', 'tokenize', 'train']);
    assert.equal(setting('seed').default, trainJson.seed, 'a shared key shows the training default');
    assert.equal(o.training.defaultModelSize, trainJson.modelSize);
    const tiny = o.training.modelSizes.find((s: { name: string }) => s.name === 'tiny');
    assert.equal(tiny.parameters, countParameters({ ...loadPreset('tiny'), vocabSize: 8000 }));
    assert.deepEqual(Object.keys(o.generation.presets), ['greedy', 'balanced', 'creative', 'conservative']);
    assert.equal(o.generation.presets.greedy.temperature, 0);
  });

  test('POST /v1/jobs/estimate: steps from the pairs, tokens/s measured here once, refusals', async () => {
    const config = { dModel: 32, nLayers: 1, nHeads: 2, dFf: 64, maxSeqLen: 64, vocabSize: 300, maxLength: 64, batchSize: 8, numEpochs: 3 };
    const first = await postJson('/v1/jobs/estimate', { config, pairs: 1000 });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const e = first.body;
    assert.equal(e.steps, 3 * Math.ceil(900 / 8)); // 90% of the pairs train (trainSplit 0.9)
    assert.equal(e.tokensPerStep, 8 * 63);
    assert.equal(e.parameters, countParameters({ ...loadPreset('small'), dModel: 32, nLayers: 1, nHeads: 2, dFf: 64, maxSeqLen: 64, vocabSize: 300 }));
    assert.ok(e.tokensPerSec > 0);
    assert.equal(e.seconds, Math.round((e.steps * e.tokensPerStep) / e.tokensPerSec));
    assert.match(e.basis, /^measured on this machine/);
    const again = await postJson('/v1/jobs/estimate', { config: { ...config, maxSteps: 10 }, pairs: 1000 });
    assert.deepEqual([again.body.steps, again.body.tokensPerSec], [10, e.tokensPerSec], 'the measurement is kept');

    const bad: Array<[unknown, string, RegExp]> = [
      [{ config: { ...config, maxLength: 128 }, pairs: 10 }, 'config', /^config: maxLength 128: rows need a context of 127, the model's maxSeqLen is 64/],
      [{ config, pairs: 0 }, 'pairs', /^pairs: /],
      [{ config: { nope: 1 }, pairs: 10 }, 'config.nope', /^config: unknown key nope/],
      [{ config, pairs: 10, extra: 1 }, 'extra', /^extra: unknown field/],
    ];
    for (const [body, param, message] of bad) {
      const r = await postJson('/v1/jobs/estimate', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.param, param);
      assert.match(r.body.error.message, message);
    }
  });
});
