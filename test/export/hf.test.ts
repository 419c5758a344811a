/**
 * gptmed-export --format hf, checked from outside: a GPT-2 forward written in PyTorch from config.json and
 * model.safetensors alone (test/export/gpt2_forward.py, Debian's /usr/bin/python3 with python3-torch)
 * gives gptmed's logits, and Python's sentencepiece segments text with the exported tokenizer.model as
 * gptmed does.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { encodePrompt, pairText } from '../../src/dataset/index.js';
import { toGpt2 } from '../../src/export/gpt2-layout.js';
import { readExportSource } from '../../src/export/source.js';
import { readSafetensors, toFloat32 } from '../../src/export/safetensors.js';
import { loadCheckpoint, type GPT } from '../../src/model/index.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { runCli, tempDir } from '../helpers.js';
import { trainExportRun, type TrainedRun } from './trained-run.js';

const python = '/usr/bin/python3';
const forwardScript = path.join(path.dirname(new URL(import.meta.url).pathname), 'gpt2_forward.py');

let run: TrainedRun;
let model: GPT;
let tokenizer: Tokenizer;
const out: Record<'f32' | 'f16', string> = { f32: '', f16: '' };
let prompts: number[][];

function py<T>(mode: 'logits' | 'encode', dir: string, input: unknown): T {
  const r = spawnSync(python, [forwardScript, mode, dir], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`gpt2_forward.py ${mode} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** gptmed's own logits for one prompt, [T][vocab]. */
function gptmedLogits(ids: number[]): number[][] {
  const t = tf.tidy(() => model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).reshape([ids.length, model.config.vocabSize]) as tf.Tensor2D);
  const rows = t.arraySync();
  t.dispose();
  return rows;
}

function maxAbsDiff(a: number[][][], b: number[][][]): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  a.forEach((rows, p) =>
    rows.forEach((row, i) =>
      row.forEach((v, j) => {
        diff = Math.max(diff, Math.abs(v - b[p][i][j]));
        scale = Math.max(scale, Math.abs(v));
      }),
    ),
  );
  return { diff, scale };
}

const argmaxes = (logits: number[][][]): number[][] => logits.map((rows) => rows.map((row) => row.indexOf(Math.max(...row))));

before(async () => {
  const dir = tempDir('gptmed-hf-');
  run = await trainExportRun(dir);
  for (const dtype of ['f32', 'f16'] as const) {
    out[dtype] = path.join(dir, `hf-${dtype}`);
    const r = runCli('export', ['--checkpoint', run.runDir, '--format', 'hf', '--dtype', dtype, '-o', out[dtype]]);
    assert.equal(r.status, 0, r.stderr);
  }
  await initBackend('wasm');
  model = (await loadCheckpoint(run.runDir)).model;
  tokenizer = await loadTokenizer(run.tokenizerPath);
  prompts = run.heldOut.slice(0, 5).map((p) => encodePrompt(tokenizer, p.question));
});

test('the directory holds what transformers reads, and the tensors are the checkpoint with the scale folded in', () => {
  const dir = out.f32;
  assert.deepEqual(fs.readdirSync(dir).sort(), ['README.md', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.model']);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const c = model.config;
  assert.deepEqual(
    [cfg.architectures, cfg.model_type, cfg.vocab_size, cfg.n_positions, cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.n_inner, cfg.activation_function, cfg.layer_norm_epsilon, cfg.tie_word_embeddings, cfg.torch_dtype],
    [['GPT2LMHeadModel'], 'gpt2', c.vocabSize, c.maxSeqLen, c.dModel, c.nLayers, c.nHeads, c.dFf, 'gelu', 1e-5, true, 'float32'],
  );
  assert.deepEqual([cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id], [tokenizer.specialIds.bos, tokenizer.specialIds.eos, tokenizer.specialIds.pad]);
  const src = readExportSource(run.runDir);
  assert.equal(cfg.gptmed.step, src.manifest.step);
  assert.equal(cfg.gptmed.tokenizerSha256, src.manifest.tokenizer.sha256);
  assert.equal(cfg.gptmed.bestValLoss, src.manifest.trainState.bestValLoss);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out.f16, 'config.json'), 'utf8')).torch_dtype, 'float16');
  const gen = JSON.parse(fs.readFileSync(path.join(dir, 'generation_config.json'), 'utf8'));
  assert.deepEqual([gen.bos_token_id, gen.eos_token_id, gen.do_sample], [tokenizer.specialIds.bos, tokenizer.specialIds.eos, false]);
  assert.ok(fs.readFileSync(path.join(dir, 'tokenizer.model')).equals(fs.readFileSync(run.tokenizerPath)), 'tokenizer.model is not the trained one, byte for byte');
  const card = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
  for (const needle of ['GPT2LMHeadModel', 'sample.qa.txt', `${src.manifest.step} optimizer steps`, (src.manifest.trainState.bestValLoss as number).toFixed(4), 'Q: {question}\\nA:']) {
    assert.ok(card.includes(needle), `README.md lacks ${needle}`);
  }

  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, 'model.safetensors')));
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0, 'the data does not start at a multiple of 8');
  const st = readSafetensors(bytes, 'model.safetensors');
  assert.deepEqual(st.metadata, { format: 'pt' });
  const expected = toGpt2(src.manifest.modelConfig, src.weights);
  assert.deepEqual([...st.tensors.keys()], expected.map((t) => t.name));
  assert.ok(!st.tensors.has('lm_head.weight'));
  for (const t of expected) {
    const entry = st.tensors.get(t.name)!;
    assert.equal(entry.dtype, 'F32');
    assert.deepEqual(entry.shape, t.shape, t.name);
    assert.deepEqual(toFloat32(entry), t.data, t.name);
  }
});

test('a PyTorch GPT-2 forward from config.json and model.safetensors alone gives gptmed\'s logits (f32: within 1e-4)', () => {
  const theirs = py<number[][][]>('logits', out.f32, prompts);
  const ours = prompts.map(gptmedLogits);
  const { diff, scale } = maxAbsDiff(ours, theirs);
  console.log(`f32: max |logit difference| ${diff.toExponential(2)} over ${prompts.length} prompts (logits up to ${scale.toFixed(1)})`);
  assert.ok(diff < 1e-4, `logits differ by ${diff}`);
  assert.deepEqual(argmaxes(theirs), argmaxes(ours));
});

test('f16: the same forward on the float16 weights stays within float16 rounding of gptmed\'s logits', () => {
  const theirs = py<number[][][]>('logits', out.f16, prompts);
  const ours = prompts.map(gptmedLogits);
  const { diff, scale } = maxAbsDiff(ours, theirs);
  // float16 keeps 11 significant bits: each weight moves by up to 2^-11 of itself (~5e-4 relative). Through
  // two blocks and the tied head that stays well under 1% of the largest logit (measured 0.03%); a layout
  // mistake (a transposed or misnamed tensor) moves logits by their own size.
  console.log(`f16: max |logit difference| ${diff.toExponential(2)} (logits up to ${scale.toFixed(1)})`);
  assert.ok(diff < 0.01 * scale, `logits differ by ${diff}, more than 1% of ${scale}`);
  const agree = argmaxes(theirs).flat().filter((id, i) => id === argmaxes(ours).flat()[i]).length;
  const total = argmaxes(ours).flat().length;
  assert.ok(agree >= total - 2, `the most likely next token differs at ${total - agree} of ${total} positions`);
});

test('Python\'s sentencepiece segments held-out text with the exported tokenizer.model as gptmed does', () => {
  const texts = run.heldOut.flatMap((p) => [pairText(p), p.question, ` ${p.answer}`]);
  const theirs = py<number[][]>('encode', out.f32, texts);
  texts.forEach((text, i) => assert.deepEqual(theirs[i], tokenizer.encode(text), text));
});
