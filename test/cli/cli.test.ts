import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli } from '../helpers.js';

test('an unknown flag is one line on stderr and exit status 2', () => {
  const r = runCli('convert', ['x.csv', '-o', 'y.txt', '--bogus-flag']);
  assert.equal(r.status, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^gptmed-convert: error: .*bogus-flag.*--help/);
});

test('the umbrella command lists every stage and requires one', () => {
  const help = runCli('gptmed', ['--help']);
  assert.equal(help.status, 0);
  for (const name of ['convert', 'train-tokenizer', 'tokenize', 'train', 'generate', 'evaluate']) {
    assert.match(help.stdout, new RegExp(`gptmed ${name}\\b`));
  }
  const none = runCli('gptmed', []);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^gptmed: error: /);
});

test('--help works for every binary', () => {
  for (const name of ['convert', 'train-tokenizer', 'tokenize', 'train', 'generate', 'evaluate']) {
    const r = runCli(name, ['--help']);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`gptmed-${name}`));
  }
});

test('gptmed <command> loads only that command: convert never loads tfjs, train does', () => {
  // A module hook that refuses tfjs: a command that imports it fails.
  const hook = "export async function resolve(s, c, next) { if (s.startsWith('@tensorflow/')) throw new Error('tfjs loaded'); return next(s, c); }";
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  const run = (...args: string[]): number | null =>
    spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, path.join(repoRoot, 'bin', 'gptmed.js'), ...args], { encoding: 'utf8' }).status;
  assert.equal(run('convert', '--help'), 0);
  assert.equal(run('--help'), 0, 'the command list needs no command module');
  assert.equal(run('train', '--help'), 1, 'the hook works: gptmed-train needs tfjs');
});

test('every command takes --quiet (-q), and -f for --force where it has one', () => {
  for (const name of ['convert', 'train-tokenizer', 'tokenize', 'train', 'generate', 'evaluate', 'export', 'import', 'serve']) {
    const help = runCli(name, ['--help']).stdout;
    assert.match(help, /-q, --quiet/, name);
    if (/--force/.test(help)) assert.match(help, /-f, --force/, name);
  }
});
