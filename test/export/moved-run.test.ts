/**
 * A run directory carries its tokenizer (tokenizer.model, named relatively by every manifest): moved to
 * another folder, with the tokenizer it was trained from gone, it answers as before with no extra flag.
 * Checkpoints written before runs kept a copy (an absolute path in the manifest) still load: from that
 * path, else from the run's copy.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { runTokenizerFile } from '../../src/model/run-dir.js';
import { runCli, tempDir } from '../helpers.js';
import { trainExportRun } from './trained-run.js';

const dir = tempDir();
const run = await trainExportRun(dir);
const questionsFile = path.join(dir, 'questions.txt');
fs.writeFileSync(questionsFile, `${run.heldOut.slice(0, 5).map((p) => p.question).join('\n')}\n`);

/** Greedy answers of the run at `checkpoint` to the five questions, through gptmed-generate. */
function answers(checkpoint: string): string[] {
  const r = runCli('generate', ['--checkpoint', checkpoint, '--input-file', questionsFile, '--preset', 'greedy', '--max-new-tokens', '32']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { answer: string }).answer);
}

function manifestOf(runDir: string): { file: string; manifest: { tokenizer: Record<string, string> } } {
  const file = path.join(runDir, fs.readFileSync(path.join(runDir, 'best'), 'utf8').trim(), 'manifest.json');
  return { file, manifest: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

const before = answers(run.runDir);

test('the run keeps its own tokenizer, and its manifests name it relatively', () => {
  assert.deepEqual(fs.readFileSync(path.join(run.runDir, runTokenizerFile)), fs.readFileSync(run.tokenizerPath));
  const { manifest } = manifestOf(run.runDir);
  assert.equal(manifest.tokenizer.file, '../tokenizer.model');
  assert.equal(manifest.tokenizer.source, path.resolve(run.tokenizerPath));
});

test('a run directory moved elsewhere, its original tokenizer gone, answers the same with no extra flag', () => {
  const moved = path.join(dir, 'elsewhere', 'renamed-run');
  fs.mkdirSync(path.dirname(moved));
  fs.cpSync(run.runDir, moved, { recursive: true });
  fs.renameSync(path.dirname(run.tokenizerPath), `${path.dirname(run.tokenizerPath)}-gone`);
  try {
    assert.deepEqual(answers(moved), before);
  } finally {
    fs.renameSync(`${path.dirname(run.tokenizerPath)}-gone`, path.dirname(run.tokenizerPath));
  }
});

test('a checkpoint from before runs kept a copy loads from its absolute path, else from the copy', () => {
  const old = path.join(dir, 'old-run');
  fs.cpSync(run.runDir, old, { recursive: true });
  const { file, manifest } = manifestOf(old);
  manifest.tokenizer = { file: path.resolve(run.tokenizerPath), sha256: manifest.tokenizer.sha256 };
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2));
  fs.rmSync(path.join(old, runTokenizerFile));
  assert.deepEqual(answers(old), before, 'absolute path, no copy');
  fs.copyFileSync(run.tokenizerPath, path.join(old, runTokenizerFile));
  manifest.tokenizer.file = path.join(dir, 'no-longer-there.model');
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2));
  assert.deepEqual(answers(old), before, 'absolute path gone, the copy used');
});
