import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../src/common/errors.js';
import { encodePrompt } from '../../src/dataset/index.js';
import { evaluate, generate, loadModel, type LoadedModel } from '../../src/generate/index.js';
import type { KVCache } from '../../src/model/index.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';
import { quizFile, trainQuizTokenizer, trainTinyRun, type TinyRun } from './tiny-model.js';

let run: TinyRun;
let lm: LoadedModel;
let dir: string;

before(async () => {
  dir = tempDir('gptmed-generate-');
  run = await trainTinyRun(dir, 50);
  lm = await loadModel({ checkpoint: run.runDir, device: 'wasm' });
});

after(() => lm?.dispose());

test('a briefly trained model answers its questions and stops at <eos> by itself', async () => {
  let stoppedAtEos = 0;
  let exact = 0;
  for (const pair of run.pairs) {
    const r = await generate(lm, pair.question, { preset: 'greedy', maxNewTokens: 30 });
    if (r.answers[0].stop === 'eos') stoppedAtEos++;
    if (r.text === pair.answer) exact++;
    assert.ok(r.answers[0].generatedTokens < 30, `${pair.question} ran to the length limit: ${r.text}`);
  }
  assert.ok(stoppedAtEos >= run.pairs.length - 2, `only ${stoppedAtEos} of ${run.pairs.length} stopped at <eos>`);
  assert.ok(exact >= run.pairs.length - 6, `only ${exact} of ${run.pairs.length} answers are the reference`);
});

test('the KV cache gives the same logits as a full forward pass, position by position', () => {
  const ids = encodePrompt(lm.tokenizer, 'African: Chad -- capital? And what else?');
  const { vocabSize } = lm.model.config;
  const logitRows = (chunk: number[], cache?: KVCache): number[][] => {
    const t = tf.tidy(() => lm.model.forward(tf.tensor2d(chunk, [1, chunk.length], 'int32'), { cache }).reshape([chunk.length, vocabSize]) as tf.Tensor2D);
    const rows = t.arraySync();
    t.dispose();
    return rows;
  };
  const full = logitRows(ids);
  const cache = lm.model.createCache(1);
  let maxDiff = 0;
  // The prompt's first half at once, then one token at a time.
  const half = Math.floor(ids.length / 2);
  const chunks = [ids.slice(0, half), ...ids.slice(half).map((id) => [id])];
  let pos = 0;
  for (const chunk of chunks) {
    logitRows(chunk, cache).forEach((row, i) => row.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - full[pos + i][j])))));
    pos += chunk.length;
  }
  cache.dispose();
  assert.equal(pos, ids.length);
  assert.ok(maxDiff < 1e-3, `cached logits differ by ${maxDiff}`);
});

test('greedy answers are identical with and without the KV cache, and so are seeded samples', async () => {
  const questions = [...run.pairs.slice(0, 6).map((p) => p.question), 'What is the capital of Peru?', 'Asian: Japan -- capital?'];
  for (const q of questions) {
    const cached = await generate(lm, q, { preset: 'greedy', maxNewTokens: 25, useCache: true });
    const plain = await generate(lm, q, { preset: 'greedy', maxNewTokens: 25, useCache: false });
    assert.deepEqual(cached.answers[0].tokenIds, plain.answers[0].tokenIds, q);
    assert.equal(cached.answers[0].stop, plain.answers[0].stop);
    const sampledCached = await generate(lm, q, { preset: 'creative', seed: 3, maxNewTokens: 25 });
    const sampledPlain = await generate(lm, q, { preset: 'creative', seed: 3, maxNewTokens: 25, useCache: false });
    assert.deepEqual(sampledCached.answers[0].tokenIds, sampledPlain.answers[0].tokenIds, q);
  }
});

test('same seed, same answers; streamed text is exactly the answer', async () => {
  const q = 'African: Kenya -- capital?';
  const opts = { temperature: 1.5, topK: 0, topP: 1, seed: 11, numSamples: 4, maxNewTokens: 20 };
  const chunks: string[][] = [[], [], [], []];
  const a = await generate(lm, q, { ...opts, onText: (text, sample) => chunks[sample].push(text) });
  const b = await generate(lm, q, opts);
  assert.deepEqual(a.answers, b.answers);
  assert.equal(a.answers.length, 4);
  a.answers.forEach((ans, s) => assert.equal(chunks[s].join(''), ans.text, `sample ${s}`));
});

test('a prompt longer than the context is cut from the left with a note, never a crash', async () => {
  const long = `${'Tell me about the capitals of Africa, please. '.repeat(12)}African: Chad -- capital?`;
  const r = await generate(lm, long, { preset: 'greedy', maxNewTokens: 200 });
  assert.ok(r.droppedPromptTokens > 0);
  // At most half the context is kept for the answer; the prompt keeps <bos> and its end.
  assert.equal(r.promptTokens, lm.model.config.maxSeqLen / 2);
  assert.ok(['eos', 'context', 'question'].includes(r.answers[0].stop));
  assert.ok(r.promptTokens + r.answers[0].tokenIds.length <= lm.model.config.maxSeqLen);
});

test('evaluate: references the model learned score near-perfect; wrong references do not', async () => {
  const pairs = run.pairs.slice(0, 8);
  const good = await evaluate(lm, pairs);
  assert.equal(good.pairs, 8);
  assert.equal(good.records.length, 8);
  assert.ok(good.exactMatch >= 0.75, `exact match ${good.exactMatch}`);
  assert.ok(good.tokenF1 >= good.exactMatch);
  assert.ok(good.answerPerplexity < 1.5, `perplexity ${good.answerPerplexity}`);
  assert.deepEqual(good.options.temperature, 0, 'greedy by default');
  // Shift the references by one: every answer is now another pair's.
  const wrong = await evaluate(lm, pairs.map((p, i) => ({ question: p.question, answer: pairs[(i + 1) % pairs.length].answer })));
  assert.ok(wrong.exactMatch <= 0.125);
  assert.ok(wrong.answerPerplexity > 10 * good.answerPerplexity, `${wrong.answerPerplexity} vs ${good.answerPerplexity}`);
  const limited = await evaluate(lm, quizFile, { limit: 3 });
  assert.equal(limited.pairs, 3);
  assert.equal(limited.records[0].question, run.pairs[0].question);
});

test('a tokenizer other than the one the model was trained with is refused in one line', async () => {
  const other = await trainQuizTokenizer(dir, 'other', 120);
  await assert.rejects(loadModel({ checkpoint: run.runDir, tokenizer: other, device: 'wasm' }), (err: Error) => {
    assert.match(err.message, /other\.model: not the tokenizer this model was trained with \(.*quiz\.model, sha256 [0-9a-f]{12}\); pass that \.model file with --tokenizer$/);
    return err instanceof UserError;
  });
});

test('a tokenizer retrained in place since the model was trained is named as changed, with both hashes', async () => {
  const moved = path.join(dir, 'moved-run');
  fs.cpSync(run.runDir, moved, { recursive: true });
  // The recorded tokenizer path now holds another tokenizer: point a copy of the run at a file we can change.
  const recorded = path.join(dir, 'recorded.model');
  fs.copyFileSync(run.tokenizerPath, recorded);
  for (const step of fs.readdirSync(moved).filter((n) => n.startsWith('step-'))) {
    const manifestPath = path.join(moved, step, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    manifest.tokenizer.file = recorded;
    fs.writeFileSync(manifestPath, JSON.stringify(manifest));
  }
  fs.copyFileSync(await trainQuizTokenizer(dir, 'retrained', 120), recorded);
  await assert.rejects(loadModel({ checkpoint: moved, device: 'wasm' }), (err: Error) => {
    assert.match(err.message, /recorded\.model: changed since this model was trained with it \(sha256 now [0-9a-f]{12}, then [0-9a-f]{12}\); restore it, or pass the original \.model with --tokenizer$/);
    return err instanceof UserError;
  });
});

test('CLI: gptmed-generate prints only the answer; --stream prints the same', () => {
  const q = run.pairs[3];
  const args = ['--checkpoint', run.runDir, '--prompt', q.question, '--preset', 'greedy', '--device', 'wasm'];
  const plain = runCli('generate', args);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stdout, `${q.answer}\n`);
  assert.match(plain.stderr, /^backend: wasm/m);
  const streamed = runCli('generate', [...args, '--stream']);
  assert.equal(streamed.stdout, plain.stdout);
});

test('CLI: --input-file writes JSONL (refusing to overwrite); --interactive answers until exit', () => {
  const out = path.join(dir, 'answers.jsonl');
  const args = ['--checkpoint', run.runDir, '--input-file', quizFile, '--preset', 'greedy', '--device', 'wasm', '--max-new-tokens', '20', '-o', out];
  const r = runCli('generate', args);
  assert.equal(r.status, 0, r.stderr);
  const lines = fs.readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, run.pairs.length);
  assert.deepEqual(Object.keys(lines[0]).sort(), ['answer', 'question', 'reference', 'sample', 'stop', 'tokens']);
  assert.equal(lines[0].question, run.pairs[0].question);
  assert.equal(lines.filter((l) => l.answer === l.reference).length >= run.pairs.length - 6, true);
  const again = runCli('generate', args);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already exists; .*--force/);

  const qs = [run.pairs[0], run.pairs[1], run.pairs[2]];
  const loop = runCli('generate', ['--checkpoint', run.runDir, '--interactive', '--preset', 'greedy', '--device', 'wasm'], {
    input: `${qs[0].question}\n\n${qs[1].question}\nexit\n${qs[2].question}\n`,
  });
  assert.equal(loop.status, 0, loop.stderr);
  assert.equal(loop.stdout, `${qs[0].answer}\n${qs[1].answer}\n`);
  // Ctrl-D (end of input) also leaves.
  const eof = runCli('generate', ['--checkpoint', run.runDir, '-i', '--preset', 'greedy', '--device', 'wasm'], { input: `${qs[2].question}\n` });
  assert.equal(eof.status, 0, eof.stderr);
  assert.equal(eof.stdout, `${qs[2].answer}\n`);
});

test('CLI: gptmed-evaluate prints the metrics and writes the JSONL of question, reference, answer', () => {
  const out = path.join(dir, 'eval.jsonl');
  const args = ['--checkpoint', run.runDir, '--data', quizFile, '--device', 'wasm', '-o', out];
  const r = runCli('evaluate', [...args, '--limit', '6']);
  assert.equal(r.status, 0, r.stderr);
  for (const field of ['pairs +6', 'answer perplexity +[\\d.]+ over \\d+ reference answer tokens', 'exact match +[\\d.]+', 'token F1 +[\\d.]+', 'answers ended by', 'time +[\\d.]+ s']) {
    assert.match(r.stdout, new RegExp(field));
  }
  const records = fs.readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(records.length, 6);
  for (const key of ['question', 'reference', 'answer', 'exactMatch', 'f1', 'stop']) assert.ok(key in records[0], key);
  const refused = runCli('evaluate', [...args, '--limit', '6']);
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr.trim().split('\n').length, 1);
  // Without -o only the metrics are printed: nothing is written where it runs.
  const cwd = tempDir();
  const printed = runCli('evaluate', [...args.slice(0, -2), '--limit', '2'], { cwd });
  assert.equal(printed.status, 0, printed.stderr);
  assert.match(printed.stdout, /token F1/);
  assert.doesNotMatch(printed.stdout, /^answers {2,}/m);
  assert.deepEqual(fs.readdirSync(cwd), []);
  const json = runCli('evaluate', [...args, '--force', '--json', '--limit', '2']);
  assert.equal(json.status, 0, json.stderr);
  const metrics = JSON.parse(json.stdout) as { pairs: number; exactMatch: number; answerPerplexity: number };
  assert.equal(metrics.pairs, 2);
  assert.equal(fs.readFileSync(out, 'utf8').trimEnd().split('\n').length, 2, '--force replaced the file');
});

test('the library example in MANUAL.md runs as written, importing the package by its name', () => {
  const manual = fs.readFileSync(path.join(repoRoot, 'MANUAL.md'), 'utf8');
  const section = manual.slice(manual.indexOf('<!-- section: library'), manual.indexOf('<!-- end section: library'));
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, 'a js block in the library section');
  // A project of the user's own, with gptmed installed in its node_modules.
  const project = path.join(dir, 'user-project');
  fs.mkdirSync(path.join(project, 'node_modules'), { recursive: true });
  fs.symlinkSync(repoRoot, path.join(project, 'node_modules', 'gptmed'), 'dir');
  fs.writeFileSync(path.join(project, 'example.mjs'), code);
  const r = spawnSync(process.execPath, ['example.mjs', run.runDir, quizFile], { cwd: project, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[1], /^ended by: (eos|question|length|context)$/);
  assert.match(lines[3], /^perplexity [\d.]+, exact match [\d.]+, F1 [\d.]+$/);
});
