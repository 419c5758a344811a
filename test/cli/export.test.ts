/** gptmed-export refuses what it cannot do in one line, with the exit code of its kind, and keeps what the user has. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../helpers.js';
import { trainTinyRun } from '../generate/tiny-model.js';

const dir = tempDir();
const run = await trainTinyRun(dir, 1);

function refused(args: string[], status: number, line: RegExp): void {
  const r = runCli('export', args);
  assert.equal(r.status, status, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  assert.match(lines[0], /^gptmed-export: error: /);
  assert.match(lines[0], line);
  assert.doesNotMatch(r.stderr, /internal error|    at /);
}

test('an unknown format or dtype is a usage error (exit 2) naming the choices', () => {
  refused(['--checkpoint', run.runDir, '--format', 'onnx', '-o', path.join(dir, 'm.onnx')], 2, /format.*onnx.*gguf, hf|Choices: "gguf", "hf"/);
  refused(['--checkpoint', run.runDir, '--format', 'gguf', '--dtype', 'q4', '-o', path.join(dir, 'm.gguf')], 2, /dtype|q4/);
  assert.equal(fs.existsSync(path.join(dir, 'm.gguf')), false);
});

test('a checkpoint that does not load is named, and nothing is written', () => {
  const out = path.join(dir, 'none.gguf');
  refused(['--checkpoint', path.join(dir, 'no-such-run'), '--format', 'gguf', '-o', out], 1, /no-such-run: no such checkpoint or run directory/);
  const damaged = path.join(dir, 'damaged');
  fs.cpSync(run.runDir, damaged, { recursive: true });
  const step = fs.readFileSync(path.join(damaged, 'best'), 'utf8').trim();
  fs.truncateSync(path.join(damaged, step, 'weights.bin'), 100);
  refused(['--checkpoint', damaged, '--format', 'hf', '-o', out], 1, /weights\.bin: damaged/);
  assert.equal(fs.existsSync(out), false);
});

test('a model whose tokenizer is gone cannot be exported: the line says which file', () => {
  const orphan = path.join(dir, 'orphan');
  fs.cpSync(run.runDir, orphan, { recursive: true });
  const step = fs.readFileSync(path.join(orphan, 'best'), 'utf8').trim();
  const manifestFile = path.join(orphan, step, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  manifest.tokenizer.file = path.join(dir, 'gone.model');
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  refused(['--checkpoint', orphan, '--format', 'gguf', '-o', path.join(dir, 'o.gguf')], 1, /gone\.model, is missing/);
});

test('an existing output is refused without --force and left as it was', () => {
  const out = path.join(dir, 'mine.gguf');
  fs.writeFileSync(out, 'my own file\n');
  refused(['--checkpoint', run.runDir, '--format', 'gguf', '-o', out], 1, /mine\.gguf already exists.*--force/);
  const outDir = path.join(dir, 'mine-hf');
  fs.mkdirSync(outDir);
  fs.writeFileSync(path.join(outDir, 'notes.txt'), 'keep\n');
  refused(['--checkpoint', run.runDir, '--format', 'hf', '-o', outDir], 1, /mine-hf already exists/);
  refused(['--checkpoint', run.runDir, '--format', 'gguf', '-o', outDir, '--force'], 1, /mine-hf: is a directory; give -o a file name/);
  assert.equal(fs.readFileSync(out, 'utf8'), 'my own file\n');
  assert.equal(fs.readFileSync(path.join(outDir, 'notes.txt'), 'utf8'), 'keep\n');
  assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('.')), [], 'no temporaries left');
});

test('a gguf export of a model whose tokenizer has no byte pieces says llama.cpp will stop on unknown characters', () => {
  const r = runCli('export', ['--checkpoint', run.runDir, '--format', 'gguf', '-o', path.join(dir, 'quiz.gguf')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^note: .*quiz\.model has no byte pieces: llama\.cpp stops .*--byte-fallback$/m);
  assert.match(r.stdout, /^wrote .*quiz\.gguf: gguf f32, [\d.]+ MB, from .*step-\d+ in [\d.]+ s$/m);
});
