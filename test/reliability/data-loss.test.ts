/**
 * The three ways a user could lose data (issue: reliability, items 1-3), each
 * reproduced as it happens: a real command killed with SIGKILL at each of its
 * renames (strace injects the signal at that system call), or two real runs at
 * once. After each kill, the next command writing the same path must find the
 * user's output whole (old or new, never neither, never half of each).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { sha256File } from '../../src/common/hash.js';
import { repoRoot, runCli, tempDir } from '../helpers.js';
import { buildShards, quizFile, runFlags, spawnTrain, waitFor, type Shards } from '../train/run-helpers.js';

/** Run a gptmed binary under strace, killed with SIGKILL on entering its `n`-th rename. */
function killAtRename(name: string, args: string[], n: number, cwd = repoRoot): { killed: boolean } {
  const bin = path.join(repoRoot, 'bin', `gptmed-${name}.js`);
  const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', `trace=rename,renameat,renameat2`, '-e', `inject=rename,renameat,renameat2:signal=KILL:when=${n}`, process.execPath, bin, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
  });
  assert.notEqual(r.error?.message.includes('ENOENT'), true, 'strace is needed (apt-get install strace; .ci/run installs it)');
  // strace ends itself with the signal that ended the command.
  return { killed: r.signal === 'SIGKILL' };
}

/** Every file under `dir` (hidden ones too) with its sha256. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    if (fs.statSync(p).isFile()) out[name] = sha256File(p);
  }
  return out;
}

const leftovers = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.startsWith('.'));

describe('gptmed-tokenize --force killed at any rename', () => {
  it('keeps the old output until the new one is in place, and the next run finds one of them whole', () => {
    const dir = tempDir();
    const shards = buildShards(dir, { maxLength: 32 });
    const oldFiles = snapshot(shards.dir);
    const oldCopy = path.join(dir, 'old-copy');
    fs.cpSync(shards.dir, oldCopy, { recursive: true });
    const args = ['--input', quizFile, '--tokenizer', shards.tokenizer, '--output-dir', shards.dir, '--max-length', '48', '--quiet'];
    // The new output, made once elsewhere, to recognise it.
    const reference = path.join(dir, 'reference');
    assert.equal(runCli('tokenize', [...args.slice(0, 5), reference, '--max-length', '48', '--quiet']).status, 0);
    const newFiles = snapshot(reference);
    const statesSeen = new Set<string>();
    for (let n = 1; n <= 8; n++) {
      fs.rmSync(shards.dir, { recursive: true });
      fs.cpSync(oldCopy, shards.dir, { recursive: true });
      const { killed } = killAtRename('tokenize', [...args, '--force'], n);
      const present = fs.existsSync(shards.dir);
      statesSeen.add(present ? 'output present' : 'output moved aside');
      // The next command writing that path (without --force) puts a moved-aside output back and refuses.
      const next = runCli('tokenize', args);
      assert.equal(next.status, 1, next.stderr);
      assert.match(next.stderr, /already exists; choose another output or pass --force/);
      const now = snapshot(shards.dir);
      const whole = JSON.stringify(now) === JSON.stringify(oldFiles) ? 'old' : JSON.stringify(now) === JSON.stringify(newFiles) ? 'new' : 'mixed';
      assert.notEqual(whole, 'mixed', `kill at rename ${n}: the output is neither the old nor the new one`);
      assert.deepEqual(leftovers(dir), [], `kill at rename ${n}: leftovers remain`);
      if (!killed) break; // fewer renames than n: the run finished
    }
    // The kill between moving the old output aside and moving the new one in happened at least once.
    assert.ok(statesSeen.has('output moved aside'), [...statesSeen].join(', '));
  });
});

describe('gptmed-train-tokenizer --force killed at any rename', () => {
  it('leaves the .model and .vocab of one training, never a new .model beside an old .vocab', () => {
    // The .model records its --output-prefix: every training here writes `tok` in its own directory.
    const [oldDir, newDir, dir] = [tempDir(), tempDir(), tempDir()];
    const train = (vocab: number, extra: string[] = []) => ['--input', quizFile, '--output-prefix', 'tok', '--vocab-size', String(vocab), '--quiet', ...extra];
    assert.equal(runCli('train-tokenizer', train(300), { cwd: oldDir }).status, 0);
    assert.equal(runCli('train-tokenizer', train(320), { cwd: newDir }).status, 0);
    const pair = (d: string): string => `${sha256File(path.join(d, 'tok.model'))} ${sha256File(path.join(d, 'tok.vocab'))}`;
    const [oldPair, newPair] = [pair(oldDir), pair(newDir)];
    let sawHalf = false;
    for (let n = 1; n <= 4; n++) {
      for (const ext of ['model', 'vocab']) fs.copyFileSync(path.join(oldDir, `tok.${ext}`), path.join(dir, `tok.${ext}`));
      const { killed } = killAtRename('train-tokenizer', train(320, ['--force']), n, dir);
      if (![oldPair, newPair].includes(pair(dir))) sawHalf = true; // as the kill left it
      const next = runCli('train-tokenizer', train(320), { cwd: dir });
      assert.equal(next.status, 1, next.stderr);
      assert.match(next.stderr, /already exists/);
      assert.ok([oldPair, newPair].includes(pair(dir)), `kill at rename ${n}: .model and .vocab come from different trainings`);
      assert.deepEqual(leftovers(dir), [], `kill at rename ${n}: leftovers remain`);
      if (!killed) break;
    }
    assert.ok(sawHalf, 'the kill between the two renames was reproduced (and then repaired)');
  });
});

describe('two gptmed-train runs on one --checkpoint-dir', () => {
  let dir: string;
  let shards: Shards;
  before(() => {
    dir = tempDir();
    shards = buildShards(dir);
  });

  it('refuses the second in one line naming the holder; a lock left by a killed run is taken over', async () => {
    const run = path.join(dir, 'run');
    const first = spawnTrain(runFlags(shards, run, { 'max-steps': 100000, 'save-interval': 1000 }));
    try {
      await waitFor(() => /step \d+\//.test(first.stderr()), 'the first run to train');
      const second = runCli('train', runFlags(shards, run, { 'max-steps': 5, force: true }));
      assert.equal(second.status, 1, second.stderr);
      assert.equal(second.stderr.trim().split('\n').length, 1, second.stderr);
      assert.match(second.stderr, new RegExp(`^gptmed-train: error: ${run} is in use by another gptmed-train \\(pid ${first.child.pid} on .*\\); wait for it to finish`));
      const resumed = runCli('train', ['--resume', '--checkpoint-dir', run]);
      assert.equal(resumed.status, 1, 'resuming a running run is refused too');
      assert.match(resumed.stderr, /is in use by another gptmed-train/);
    } finally {
      first.child.kill('SIGKILL');
      await first.exit;
    }
    // The killed run's lock is stale: a new run takes it over.
    assert.ok(fs.existsSync(path.join(run, '.gptmed-train.lock')));
    const third = runCli('train', runFlags(shards, run, { 'max-steps': 3, force: true }));
    assert.equal(third.status, 0, third.stderr);
    assert.equal(fs.existsSync(path.join(run, '.gptmed-train.lock')), false, 'released at the end');
    assert.equal(JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8')).maxSteps, 3, "--force replaced the old run's config.json");
  });
});

describe('gptmed-train --force over an existing run', () => {
  it('keeps the old run until the new one has a checkpoint: killed before that, the old run comes back', async () => {
    const dir = tempDir();
    const shards = buildShards(dir);
    const run = path.join(dir, 'run');
    assert.equal(runCli('train', runFlags(shards, run, { 'max-steps': 4, 'save-interval': 2 })).status, 0);
    const before = snapshot(run);
    const oldLatest = fs.readFileSync(path.join(run, 'latest'), 'utf8');
    const replacing = spawnTrain(runFlags(shards, run, { 'max-steps': 100000, 'save-interval': 100000, 'eval-interval': 100000, force: true }));
    try {
      await waitFor(() => /step \d+\//.test(replacing.stderr()), 'the new run to train');
      assert.equal(fs.existsSync(path.join(run, 'latest')), false, 'the old run is out of the way while the new one trains');
    } finally {
      replacing.child.kill('SIGKILL');
      await replacing.exit;
    }
    // The next command on the directory (here: continue the run) finds the old run as it was.
    const resumed = runCli('train', ['--resume', '--checkpoint-dir', run, '--max-steps', '4']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`nothing to do: the run is at step 4 of 4`));
    assert.equal(fs.readFileSync(path.join(run, 'latest'), 'utf8'), oldLatest);
    const after = snapshot(run);
    for (const name of ['latest', 'best', 'config.json']) assert.equal(after[name], before[name], name);
    assert.deepEqual(fs.readdirSync(run).filter((n) => n.startsWith('.replaced-run-')), []);
  });
});
