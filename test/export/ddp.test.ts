/**
 * scripts/torch/train_ddp.py: a trained run exported with --format hf trains on in PyTorch on two processes
 * (torchrun, gloo), and comes home with gptmed-import: the val loss goes down, the directory it writes is the
 * export's format (step updated), gptmed measures the same val loss on the imported run as the script did,
 * and gptmed-generate answers with it. The script's answer-only loss (train.mask.npy) is gptmed's too.
 *
 * Needs /usr/bin/python3 with torch and numpy (Debian: python3-torch, python3-numpy; .ci/run installs them).
 * About 50 s on two cores (half of it the fixture run).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { initBackend } from '../../src/backend/index.js';
import { loadCheckpoint } from '../../src/model/run-dir.js';
import { loadSplit, makeBatch } from '../../src/train/data.js';
import { evaluateLoss } from '../../src/train/step.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';
import { trainExportRun, type TrainedRun } from './trained-run.js';

const python = '/usr/bin/python3';
const script = path.join(repoRoot, 'scripts', 'torch', 'train_ddp.py');

/** Rows of each evaluation: --eval-batches 4 x --batch-size 8 x 2 processes, as the fixture's gptmed-train evaluated (4 x 16). */
const evalRows = 64;

let dir: string;
let run: TrainedRun;
let hfDir: string;
let outDir: string;
let ddpLog: string;
let ddpSeconds: number;

function mustRun(name: string, args: string[]): string {
  const r = runCli(name, args);
  assert.equal(r.status, 0, `gptmed-${name}: ${r.stderr}`);
  return r.stdout;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Run the script (with torchrun when `procs` > 1); its stdout and stderr together. */
async function trainDdp(procs: number, args: string[], expectStatus = 0): Promise<string> {
  // torch 1.13's torchrun on Python 3.11 fails reading its default --redirects ("'NoneType' object has no
  // attribute 'get'"); --redirects 1 --tee 1 sends the workers' stdout to the console (prefixed [default0]:).
  const launcher = procs > 1
    ? ['-m', 'torch.distributed.run', '--nproc_per_node', String(procs), '--master_addr', '127.0.0.1', '--master_port', String(await freePort()),
      '--redirects', '1', '--tee', '1', '--monitor_interval', '0.5', script]
    : [script];
  const r = spawnSync(python, [...launcher, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  const output = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, expectStatus, output);
  return output;
}

/** The "step N val loss X" lines, by step. */
function valLosses(log: string): Map<number, number> {
  return new Map([...log.matchAll(/step (\d+) val loss ([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]));
}

/** gptmed's own val loss of a checkpoint on the first `evalRows` rows of a val split (as gptmed-train evaluates). */
async function gptmedValLoss(checkpoint: string, valNpy: string): Promise<number> {
  const { model } = await loadCheckpoint(checkpoint);
  try {
    const { data } = loadSplit(valNpy);
    const batches = Array.from({ length: evalRows / 16 }, (_, b) => b * 16).map((start) => makeBatch(data, Array.from({ length: 16 }, (_, r) => start + r)));
    return await evaluateLoss(model, batches);
  } finally {
    model.dispose();
  }
}

const ddpArgs = (model: string, shards: string, out: string, extra: string[]): string[] => [
  '--model', model, '--train-data', path.join(shards, 'train.npy'), '--val-data', path.join(shards, 'val.npy'), '--out', out,
  '--batch-size', '8', '--eval-batches', '4', '--seed', '42', ...extra,
];

before(async () => {
  const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, `${python} has no torch and numpy (apt-get install python3-torch python3-numpy): ${probe.stderr}`);
  await initBackend('wasm');
  dir = tempDir('gptmed-ddp-');
  run = await trainExportRun(dir);
  hfDir = path.join(dir, 'hf');
  mustRun('export', ['--checkpoint', run.runDir, '--format', 'hf', '-o', hfDir]);
  outDir = path.join(dir, 'hf-ddp');
  const started = Date.now();
  ddpLog = await trainDdp(2, ddpArgs(hfDir, run.shardsDir, outDir, [
    '--max-steps', '100', '--learning-rate', '3e-3', '--warmup-steps', '10', '--eval-interval', '50', '--log-interval', '25',
  ]));
  ddpSeconds = (Date.now() - started) / 1000;
});

test('two processes train the exported model on: the val loss goes down, and the script measures it as gptmed does', async () => {
  const val = valLosses(ddpLog);
  const before = val.get(0)!;
  const after = val.get(100)!;
  assert.ok(before !== undefined && after !== undefined, ddpLog);
  assert.match(ddpLog, /step 100 loss [\d.]+ lr /);
  assert.ok(after < before - 0.1, `val loss ${before} -> ${after}`);
  // The exported weights under the script's GPT-2 forward: gptmed-train's own val loss of that checkpoint.
  assert.ok(Math.abs(before - (await gptmedValLoss(run.runDir, path.join(run.shardsDir, 'val.npy')))) < 2e-4, ddpLog);
  console.log(`train_ddp.py, 2 processes, 100 steps: val loss ${before} -> ${after} in ${ddpSeconds.toFixed(1)} s`);
});

test('the directory it writes is the export format, the step moved on; gptmed-import brings it home and gptmed measures the same val loss', async () => {
  assert.deepEqual(fs.readdirSync(outDir).sort(), fs.readdirSync(hfDir).sort());
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.hf-ddp')), [], 'no temporary left beside --out');
  for (const name of ['tokenizer.model', 'generation_config.json']) assert.ok(fs.readFileSync(path.join(outDir, name)).equals(fs.readFileSync(path.join(hfDir, name))), name);
  assert.match(fs.readFileSync(path.join(outDir, 'README.md'), 'utf8'), /## Continued in PyTorch\n.*100 more steps on 2 processes/);
  const config = JSON.parse(fs.readFileSync(path.join(outDir, 'config.json'), 'utf8'));
  const original = JSON.parse(fs.readFileSync(path.join(hfDir, 'config.json'), 'utf8'));
  assert.equal(config.gptmed.step, original.gptmed.step + 100);
  assert.equal(config.gptmed.bestStep, config.gptmed.step);
  assert.deepEqual({ ...config, gptmed: null }, { ...original, gptmed: null });
  const header = (file: string): Record<string, { dtype: string; shape: number[] }> => {
    const bytes = fs.readFileSync(file);
    const h = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, k === '__metadata__' ? v : { dtype: (v as { dtype: string }).dtype, shape: (v as { shape: number[] }).shape }])) as never;
  };
  const tensors = header(path.join(outDir, 'model.safetensors'));
  assert.deepEqual(Object.keys(tensors), Object.keys(header(path.join(hfDir, 'model.safetensors'))));
  assert.deepEqual(tensors, header(path.join(hfDir, 'model.safetensors')));

  const home = path.join(dir, 'run-home');
  assert.match(mustRun('import', ['--from', outDir, '-o', home]), /step-000250/);
  const measured = await gptmedValLoss(home, path.join(run.shardsDir, 'val.npy'));
  assert.ok(Math.abs(measured - config.gptmed.lastValLoss) < 1e-4, `gptmed ${measured}, train_ddp.py ${config.gptmed.lastValLoss}`);

  const answers = path.join(dir, 'answers.jsonl');
  mustRun('generate', ['--checkpoint', home, '--preset', 'greedy', '--input-file', path.join(run.shardsDir, 'test.qa.txt'), '--max-new-tokens', '30', '--device', 'wasm', '-o', answers]);
  const records = fs.readFileSync(answers, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { answer: string });
  assert.equal(records.length, run.heldOut.length);
  const answered = records.filter((r) => r.answer.trim() !== '').length;
  assert.ok(answered > 0, 'no held-out question got an answer');
  console.log(`imported run: gptmed val loss ${measured.toFixed(4)}; ${answered}/${records.length} held-out questions answered`);
});

test('answer-only loss: on shards with train.mask.npy the script counts the targets gptmed counts', async () => {
  const masked = path.join(dir, 'shards-masked');
  mustRun('tokenize', ['--input', path.join(repoRoot, 'data', 'sample.qa.txt'), '--tokenizer', run.tokenizerPath, '--output-dir', masked,
    '--max-length', '128', '--test-split', '0.025', '--mask-prompt']);
  assert.ok(fs.existsSync(path.join(masked, 'val.mask.npy')));
  // One process (no torchrun), batch 16: the same rows per step and per evaluation as two processes of 8.
  const log = await trainDdp(1, ddpArgs(hfDir, masked, path.join(dir, 'hf-masked'), ['--batch-size', '16', '--max-steps', '2', '--eval-interval', '2', '--log-interval', '1']));
  const val = valLosses(log);
  const gptmed = await gptmedValLoss(run.runDir, path.join(masked, 'val.npy'));
  assert.ok(Math.abs(val.get(0)! - gptmed) < 2e-4, `masked val loss: train_ddp.py ${val.get(0)}, gptmed ${gptmed}`);
  assert.ok(Math.abs(val.get(0)! - valLosses(ddpLog).get(0)!) > 0.05, 'the mask changed nothing');
});

test('an existing --out is refused without --force, before any training', async () => {
  const log = await trainDdp(1, ddpArgs(hfDir, run.shardsDir, outDir, ['--max-steps', '1']), 1);
  assert.match(log, /train_ddp\.py: error: .*hf-ddp: already exists; pass --force to replace it/);
  assert.doesNotMatch(log, /val loss/);
});
