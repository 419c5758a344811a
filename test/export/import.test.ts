/**
 * gptmed-import: a trained run exported with --format hf and imported back is the same model (weights to
 * float rounding, the same greedy answers), works with gptmed-generate, export and train --resume-from,
 * and every directory gptmed cannot compute exactly is refused in one line.
 */
import assert from 'node:assert/strict';
import { f16round } from '@petamoriken/float16';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { safetensorsBytes, readSafetensors, toFloat32 } from '../../src/export/safetensors.js';
import { UserError } from '../../src/common/errors.js';
import { importHf } from '../../src/export/import.js';
import { generate, loadModel, type LoadedModel } from '../../src/generate/index.js';
import { readManifest, readTensors } from '../../src/model/checkpoint.js';
import { resolveCheckpoint } from '../../src/model/run-dir.js';
import { repoRoot, runCli, tempDir, type CliResult } from '../helpers.js';
import { trainExportRun, type TrainedRun } from './trained-run.js';

let dir: string;
let run: TrainedRun;
const hf: Record<'f32' | 'f16', string> = { f32: '', f16: '' };
const imported: Record<'f32' | 'f16', string> = { f32: '', f16: '' };
let original: LoadedModel;

/** gptmed-import as a user runs it (the built binary); asynchronous, so that the refusal cases run side by side. */
function runImport(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin', 'gptmed-import.js'), ...args], { cwd: repoRoot, env: { ...process.env, CI: '1' } }, (err, stdout, stderr) => {
      const status = err ? ((err as { code?: unknown }).code as number) : 0;
      resolve({ status: typeof status === 'number' ? status : null, stdout, stderr });
    });
  });
}

function exportHf(checkpoint: string, out: string, dtype: 'f32' | 'f16' = 'f32'): void {
  const r = runCli('export', ['--checkpoint', checkpoint, '--format', 'hf', '--dtype', dtype, '-o', out]);
  assert.equal(r.status, 0, r.stderr);
}

before(async () => {
  dir = tempDir('gptmed-import-');
  run = await trainExportRun(dir);
  for (const dtype of ['f32', 'f16'] as const) {
    hf[dtype] = path.join(dir, `hf-${dtype}`);
    exportHf(run.runDir, hf[dtype], dtype);
    imported[dtype] = path.join(dir, `imported-${dtype}`);
  }
  const r = await runImport(['--from', hf.f32, '-o', imported.f32]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^wrote .*imported-f32: step-000150 \(2 layers, d 64, 0\.14 M parameters, from F32 weights\)/);
  await importHf({ from: hf.f16, output: imported.f16 });
  original = await loadModel({ checkpoint: run.runDir, device: 'wasm' });
});

after(() => original?.dispose());

test('the imported run is the trained checkpoint: weights to float rounding, manifest, tokenizer copy, pointers', () => {
  const origDir = resolveCheckpoint(run.runDir, 'best');
  const orig = readManifest(origDir);
  const origWeights = readTensors(origDir, orig.weights);
  for (const dtype of ['f32', 'f16'] as const) {
    const runDir = imported[dtype];
    assert.deepEqual(fs.readdirSync(runDir).sort(), ['best', 'latest', 'step-000150', 'tokenizer.model']);
    assert.equal(fs.readFileSync(path.join(runDir, 'best'), 'utf8'), 'step-000150\n');
    assert.equal(fs.readFileSync(path.join(runDir, 'latest'), 'utf8'), 'step-000150\n');
    assert.ok(fs.readFileSync(path.join(runDir, 'tokenizer.model')).equals(fs.readFileSync(run.tokenizerPath)));
    const stepDir = path.join(runDir, 'step-000150');
    const m = readManifest(stepDir);
    assert.deepEqual(m.modelConfig, orig.modelConfig);
    assert.deepEqual([m.step, m.seqLen, m.specialIds, m.tokenizer, m.parameterCount, m.backend], [orig.step, orig.seqLen, orig.specialIds, { file: '../tokenizer.model', sha256: orig.tokenizer.sha256 }, orig.parameterCount, 'import']);
    assert.deepEqual(m.trainConfig, {});
    assert.deepEqual(m.trainState, {
      epoch: 0, cursor: 0, trainRows: 0, seed: 0, optimizerUpdates: 0, tokensSeen: 0,
      bestValLoss: orig.trainState.bestValLoss, bestStep: orig.step, lastValLoss: null, evalsWithoutImprovement: 0,
    });
    const weights = readTensors(stepDir, m.weights);
    // What the round trip must give: the fold (x sqrt(64) = 8 on wte, x 1/8 on lnF), float16 rounding for f16,
    // the fold undone. Exact: float16 values are float32 values, and scaling by 8 is exact.
    const scale = (name: string): number => (name === 'wte' ? 8 : name.startsWith('lnF.') ? 1 / 8 : 1);
    const roundTrip = (v: number, s: number): number => (dtype === 'f32' ? v : Math.fround(f16round(Math.fround(v * s)) * (1 / s)));
    let maxDiff = 0;
    for (const [name, data] of origWeights) {
      const got = weights.get(name)!;
      assert.equal(got.length, data.length, name);
      const s = scale(name);
      data.forEach((v, i) => {
        maxDiff = Math.max(maxDiff, Math.abs(v - got[i]));
        if (got[i] !== roundTrip(v, s)) assert.fail(`${name}[${i}]: ${got[i]} after the round trip, expected ${roundTrip(v, s)} from ${v}`);
      });
    }
    console.log(`${dtype}: max |weight difference| after export and import ${maxDiff.toExponential(2)}`);
    if (dtype === 'f32') assert.equal(maxDiff, 0);
    const moments = readTensors(stepDir, m.optimizer!);
    assert.deepEqual([...moments.keys()], [...origWeights.keys()].flatMap((n) => [`m.${n}`, `v.${n}`]));
    assert.ok([...moments.values()].every((a) => a.every((v) => v === 0)));
  }
});

test('the imported model gives the same greedy answers as the original on every held-out question', async () => {
  const lm = await loadModel({ checkpoint: imported.f32, device: 'wasm' });
  const lm16 = await loadModel({ checkpoint: imported.f16, device: 'wasm' });
  let same16 = 0;
  try {
    for (const { question } of run.heldOut) {
      const want = await generate(original, question, { preset: 'greedy', maxNewTokens: 40 });
      const got = await generate(lm, question, { preset: 'greedy', maxNewTokens: 40 });
      assert.deepEqual(got.answers[0].tokenIds, want.answers[0].tokenIds, question);
      const got16 = await generate(lm16, question, { preset: 'greedy', maxNewTokens: 40 });
      if (got16.text === want.text) same16++;
    }
  } finally {
    lm.dispose();
    lm16.dispose();
  }
  console.log(`greedy answers: f32 import ${run.heldOut.length}/${run.heldOut.length} identical, f16 import ${same16}/${run.heldOut.length}`);
});

test('the imported run works with gptmed-generate, exports again to the same weights, and trains on with --resume-from', () => {
  const questions = path.join(dir, 'questions.txt');
  fs.writeFileSync(questions, `${run.heldOut.slice(0, 3).map((p) => p.question).join('\n')}\n`);
  const answers = (checkpoint: string): string => {
    const r = runCli('generate', ['--checkpoint', checkpoint, '--input-file', questions, '--preset', 'greedy', '--max-new-tokens', '30', '--device', 'wasm', '-o', path.join(dir, `a-${path.basename(checkpoint)}.jsonl`)]);
    assert.equal(r.status, 0, r.stderr);
    return fs.readFileSync(path.join(dir, `a-${path.basename(checkpoint)}.jsonl`), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).answer).join('\n');
  };
  assert.equal(answers(imported.f32), answers(run.runDir));

  const again = path.join(dir, 'hf-again');
  exportHf(imported.f32, again);
  assert.ok(fs.readFileSync(path.join(again, 'model.safetensors')).equals(fs.readFileSync(path.join(hf.f32, 'model.safetensors'))), 'the re-export differs');
  const block = JSON.parse(fs.readFileSync(path.join(again, 'config.json'), 'utf8')).gptmed;
  assert.deepEqual([block.step, block.bestValLoss], [150, readManifest(resolveCheckpoint(run.runDir)).trainState.bestValLoss]);

  const shards = run.shardsDir;
  const r = runCli('train', ['--resume-from', imported.f32, '--train-data', path.join(shards, 'train.npy'), '--val-data', path.join(shards, 'val.npy'), '--max-steps', '155', '--batch-size', '8', '--eval-interval', '5', '--eval-batches', '2', '--device', 'wasm', '--seed', '7']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(imported.f32, 'latest'), 'utf8'), 'step-000155\n');
  const state = readManifest(resolveCheckpoint(imported.f32, 'latest')).trainState;
  // The import's trainRows 0 took these shards' rows, and the data order this run's --seed.
  assert.deepEqual([state.trainRows, state.seed], [readManifest(resolveCheckpoint(run.runDir)).trainState.trainRows, 7]);
});

/** A copy of the f32 export with `change` applied to it. */
function variant(name: string, change: (d: string) => void): string {
  const d = path.join(dir, 'bad', name);
  fs.cpSync(hf.f32, d, { recursive: true });
  change(d);
  return d;
}

function editConfig(d: string, edit: (cfg: Record<string, unknown>) => void): void {
  const file = path.join(d, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg));
}

/** Rewrite model.safetensors: `edit` gets the tensors as float32 and may add, drop or change them. */
function editWeights(d: string, edit: (tensors: Map<string, { shape: number[]; data: Float32Array }>) => void): void {
  const file = path.join(d, 'model.safetensors');
  const st = readSafetensors(new Uint8Array(fs.readFileSync(file)), file);
  const tensors = new Map([...st.tensors.values()].map((e) => [e.name, { shape: e.shape, data: toFloat32(e)! }]));
  edit(tensors);
  fs.writeFileSync(file, safetensorsBytes([...tensors].map(([name, t]) => ({ name, ...t })), 'F32'));
}

test('what gptmed cannot compute exactly is refused in one line naming the file, exit 1, nothing written', async () => {
  const cfg = (d: string): string => path.join(d, 'config.json');
  const st = (d: string): string => path.join(d, 'model.safetensors');
  const tok = (d: string): string => path.join(d, 'tokenizer.model');
  const cases: Array<[string, (d: string) => void, (d: string) => string]> = [
    ['no-config', (d) => fs.rmSync(cfg(d)), (d) => `${cfg(d)}: missing; gptmed-import needs a Hugging Face GPT-2 directory (config.json, model.safetensors, tokenizer.model)`],
    ['no-weights', (d) => fs.renameSync(st(d), path.join(d, 'pytorch_model.bin')), (d) => `${st(d)}: missing; gptmed needs the weights as one model.safetensors; pytorch_model.bin (PyTorch pickle) is not read, save with save_pretrained(..., safe_serialization=True)`],
    ['no-tokenizer', (d) => { fs.rmSync(tok(d)); fs.writeFileSync(path.join(d, 'tokenizer.json'), '{}'); }, (d) => `${tok(d)}: missing; gptmed needs the model's SentencePiece tokenizer.model (tokenizer.json, a Hugging Face tokenizer, is not one)`],
    ['llama', (d) => editConfig(d, (c) => (c.model_type = 'llama')), (d) => `${cfg(d)}: model_type "llama" is not supported; gptmed imports GPT-2 models (model_type "gpt2")`],
    ['gpt2model', (d) => editConfig(d, (c) => (c.architectures = ['GPT2Model'])), (d) => `${cfg(d)}: architectures ["GPT2Model"] is not supported; gptmed imports GPT2LMHeadModel`],
    ['gelu-new', (d) => editConfig(d, (c) => (c.activation_function = 'gelu_new')), (d) => `${cfg(d)}: activation_function "gelu_new" is not supported; gptmed computes the exact (erf) GELU, "gelu" ("gelu_new" and "gelu_pytorch_tanh" are the tanh approximation)`],
    ['no-activation', (d) => editConfig(d, (c) => delete c.activation_function), (d) => `${cfg(d)}: activation_function is not given, so transformers uses "gelu_new", which is not supported; gptmed computes the exact (erf) GELU, "gelu" ("gelu_new" and "gelu_pytorch_tanh" are the tanh approximation)`],
    ['eps', (d) => editConfig(d, (c) => (c.layer_norm_epsilon = 1e-6)), (d) => `${cfg(d)}: layer_norm_epsilon 0.000001 is not supported; gptmed's LayerNorm uses 1e-5`],
    ['inverse-layer-idx', (d) => editConfig(d, (c) => (c.scale_attn_by_inverse_layer_idx = true)), (d) => `${cfg(d)}: scale_attn_by_inverse_layer_idx true is not supported; gptmed scales attention scores by 1/sqrt(head size) only`],
    ['vocab', (d) => editConfig(d, (c) => (c.vocab_size = 512)), (d) => `${cfg(d)}: vocab_size 512 differs from ${tok(d)}'s 500 pieces; the model and the tokenizer do not belong together`],
    ['untied', (d) => editWeights(d, (t) => t.set('lm_head.weight', { shape: [500, 64], data: new Float32Array(500 * 64).fill(0.5) })), (d) => `${st(d)}: lm_head.weight differs from transformer.wte.weight (an untied LM head) and is not supported; gptmed ties the output layer to the token embedding`],
    ['missing-tensor', (d) => editWeights(d, (t) => t.delete('transformer.ln_f.bias')), (d) => `${st(d)}: no tensor transformer.ln_f.bias; not a GPT-2 model gptmed can read`],
    ['shape', (d) => editConfig(d, (c) => Object.assign(c, { n_positions: 64, gptmed: { ...(c.gptmed as object), seqLen: 64 } })), (d) => `${st(d)}: tensor transformer.wpe.weight has shape [128, 64], config.json implies [64, 64]`],
    ['extra-tensor', (d) => editWeights(d, (t) => t.set('transformer.h.0.crossattention.c_attn.weight', { shape: [1], data: new Float32Array(1) })), (d) => `${st(d)}: tensor transformer.h.0.crossattention.c_attn.weight is not part of GPT-2 (GPT2LMHeadModel); gptmed cannot import it`],
    ['extra-layer', (d) => editWeights(d, (t) => t.set('transformer.h.2.ln_1.weight', { shape: [64], data: new Float32Array(64) })), (d) => `${st(d)}: tensor transformer.h.2.ln_1.weight is not part of the GPT-2 config.json describes (n_layer 2); gptmed cannot import it`],
    ['int-dtype', (d) => {
      const b = fs.readFileSync(st(d));
      const at = b.indexOf('"transformer.wpe.weight":{"dtype":"F32"') + '"transformer.wpe.weight":{"dtype":"'.length;
      b.write('I32', at, 'latin1');
      fs.writeFileSync(st(d), b);
    }, (d) => `${st(d)}: tensor transformer.wpe.weight is I32; gptmed reads F32, F16, BF16 weights`],
    ['cut-short', (d) => fs.truncateSync(st(d), 4000), (d) => {
      const dataBytes = 4000 - 8 - fs.readFileSync(st(d)).readUInt32LE(0);
      return `${st(d)}: not a valid safetensors file (tensor transformer.wte.weight ends at byte 128000 of ${dataBytes} bytes of data; the file is cut short)`;
    }],
    ['not-spm', (d) => fs.writeFileSync(tok(d), 'not a model'), (d) => `${tok(d)}: not a SentencePiece model (the file is corrupt or of another kind); re-run gptmed-train-tokenizer to make a new one`],
  ];
  // Each case through the library (a UserError: exit 1, one line), and three of them through the command
  // too: its runner prints a UserError as that one line whatever the case (each start loads tfjs: ~1 s).
  for (const [name, change, expected] of cases) {
    const from = variant(name, change);
    const out = path.join(dir, 'bad-out', name);
    await assert.rejects(importHf({ from, output: out }), (err: unknown) => {
      assert.ok(err instanceof UserError && err.exitCode === 1, `${name}: ${String(err)}`);
      assert.equal(err.message, expected(from), name);
      return true;
    });
    assert.ok(!fs.existsSync(out), `${name}: ${out} was written`);
  }
  await Promise.all(
    ['no-tokenizer', 'gelu-new', 'untied'].map(async (name) => {
      const from = path.join(dir, 'bad', name);
      const r = await runImport(['--from', from, '-o', path.join(dir, 'bad-out', name)]);
      assert.equal(r.status, 1, `${name}: ${r.stderr}`);
      assert.equal(r.stderr, `gptmed-import: error: ${cases.find((c) => c[0] === name)![2](from)}\n`, name);
      assert.equal(r.stdout, '');
    }),
  );
});

test('an existing output is refused without --force and replaced with it; usage errors exit 2', async () => {
  const out = path.join(dir, 'existing');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'keep'), 'x');
  let r = await runImport(['--from', hf.f32, '-o', out]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `gptmed-import: error: ${out} already exists; choose another output or pass --force to overwrite it\n`);
  assert.ok(fs.existsSync(path.join(out, 'keep')));
  r = await runImport(['--from', hf.f32, '--output', out, '--force']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(out).sort(), ['best', 'latest', 'step-000150', 'tokenizer.model']);
  const [usage, help] = await Promise.all([runImport(['--from', hf.f32]), runImport(['--help'])]);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /^gptmed-import: error: Missing required argument: output \(see gptmed-import --help\)\n$/);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--from[\s\S]*--output[\s\S]*--force[\s\S]*Examples:/);
});

test('bfloat16 weights (as PyTorch often saves them) import too: each is the top half of a float32', async () => {
  const from = variant('bf16', (d) => {
    const file = path.join(d, 'model.safetensors');
    const bytes = fs.readFileSync(file);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; data_offsets: number[] }>;
    const data = bytes.subarray(8 + headerLength);
    const halves: Buffer[] = [];
    for (const [name, t] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const [begin, end] = t.data_offsets;
      const half = Buffer.alloc((end - begin) / 2);
      for (let i = 0; i < half.length / 2; i++) half.writeUInt16LE(data.readUInt16LE(begin + 4 * i + 2), 2 * i);
      Object.assign(t, { dtype: 'BF16', data_offsets: [begin / 2, end / 2] });
      halves.push(half);
    }
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((8 - ((8 + json.length) % 8)) % 8, 0x20)]);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    fs.writeFileSync(file, Buffer.concat([length, json, ...halves]));
  });
  const out = path.join(dir, 'imported-bf16');
  const r = await importHf({ from, output: out });
  assert.deepEqual(r.dtypes, ['BF16']);
  const origDir = resolveCheckpoint(run.runDir, 'best');
  const orig = readTensors(origDir, readManifest(origDir).weights);
  const stepDir = path.join(out, 'step-000150');
  const got = readTensors(stepDir, readManifest(stepDir).weights);
  const top = new Float32Array(1);
  const bits = new Uint32Array(top.buffer);
  const truncated = (v: number): number => {
    top[0] = v;
    bits[0] &= 0xffff0000;
    return top[0];
  };
  for (const [name, data] of orig) {
    const s = name === 'wte' ? 8 : name.startsWith('lnF.') ? 1 / 8 : 1;
    data.forEach((v, i) => {
      const want = Math.fround(truncated(Math.fround(v * s)) * (1 / s));
      if (got.get(name)![i] !== want) assert.fail(`${name}[${i}]: ${got.get(name)![i]}, expected ${want}`);
    });
  }
});
