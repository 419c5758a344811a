/**
 * A full disk (issue 10, item 8), on a real filesystem: a 2 MB tmpfs mounted in a private mount namespace
 * (`unshare -rm`: as root, or unprivileged through a user namespace), so nothing leaks to the machine. For
 * each command that writes output, the tmpfs holds a pre-existing output of the user's, then is filled up,
 * then the command runs with its output on it (with --force where it replaces one). Expected: exit 1 and
 * one line `gptmed-<cmd>: error: <the user's output path, or a file in the user's output directory>: no
 * space left on the device` (never a hidden temporary's name, never "internal error"), the pre-existing
 * output intact, and no temporary or partial output left on the tmpfs.
 *
 * The tmpfs disappears with the namespace, so its contents are listed (with their sha256) inside it, before
 * and after the run, by a few lines of JavaScript run by the same node.
 *
 * Where the namespace cannot be made, the tests fail with the reason: they are not skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { fixturesDir, tempDir } from '../helpers.js';
import { assertOneErrorLine, binPath, buildArtefacts, losses, runProcess, tinyTrainFlags, type Artefacts, type Command, type Snapshot } from './harness.js';

/** Lists a directory tree as JSON {relative path: "file <sha256>" | "dir" | "link <target>"}, leaving out the filler. */
const SNAPSHOT_JS = `
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const out = {};
const visit = (abs, rel) => {
  let st;
  try { st = fs.lstatSync(abs); } catch { return; }
  if (st.isSymbolicLink()) out[rel] = 'link ' + fs.readlinkSync(abs);
  else if (st.isDirectory()) {
    if (rel !== '') out[rel] = 'dir';
    for (const name of fs.readdirSync(abs).sort()) {
      if (rel === '' && name === 'filler.bin') continue;
      visit(path.join(abs, name), rel === '' ? name : rel + '/' + name);
    }
  } else out[rel] = 'file ' + crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
};
visit(process.argv[1], '');
process.stdout.write(JSON.stringify(out));
`;

/**
 * Run inside the namespace: mount, put the user's files on the tmpfs, list them, fill the disk (leaving
 * $ROOM bytes), run the command, list again. Exit 90 when the mount fails.
 */
const SCRIPT = `
set -u
mount -t tmpfs -o size=2m tmpfs "$MNT" || { echo "mount -t tmpfs failed" >&2; exit 90; }
cp -a "$SEED/." "$MNT/" || exit 91
"$NODE" -e "$SNAP" "$MNT" > "$RES/before.json" || exit 92
head -c 8388608 /dev/zero > "$MNT/filler.bin" 2>/dev/null
if [ "$ROOM" -gt 0 ]; then truncate -s "-$ROOM" "$MNT/filler.bin"; fi
"$NODE" "$BIN" "$@" > "$RES/stdout" 2> "$RES/stderr"
echo $? > "$RES/rc"
"$NODE" -e "$SNAP" "$MNT" > "$RES/after.json" || exit 93
`;

interface DiskCase {
  name: string;
  command: Command;
  /** Files of the user's on the tmpfs before the run (written under `seed`, copied onto the tmpfs). */
  seed: (seed: string) => void;
  /** Arguments; MNT stands for the tmpfs mount point. */
  args: (mnt: string) => string[];
  /** The paths the message may name: the output, or a file in the output directory (a pattern over MNT). */
  names: (mnt: string) => RegExp;
  /** Bytes left free on the tmpfs (0: full). */
  room: number;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** `<path>` or `<path>/<non-hidden names>`: a file in the output directory, never a temporary. */
const under = (p: string): string => `${esc(p)}(/[^./][^/]*)*`;

/**
 * A model whose checkpoint (about 1.2 MB of weights, 2.5 MB of optimizer state) cannot fit the 2 MB tmpfs
 * even once --force has removed the old run: the run must fail, whatever the old run freed.
 */
const biggerModel = ['--d-model', '128', '--d-ff', '256', '--n-heads', '4', '--n-layers', '2'];

let art: Artefacts;
let unshareProblem: string | null = null;

const cases: DiskCase[] = [
  {
    name: 'convert: the output file',
    command: 'convert',
    seed: (s) => fs.writeFileSync(path.join(s, 'out.qa.txt'), 'Q: my old output\nA: keep it\n'),
    args: (m) => [path.join(fixturesDir, 'convert', 'faq.csv'), '-o', `${m}/out.qa.txt`, '--force', '--quiet'],
    names: (m) => new RegExp(`^${esc(m)}/out\\.qa\\.txt: no space left on the device`),
    room: 0,
  },
  {
    name: 'train-tokenizer: the .model and .vocab',
    command: 'train-tokenizer',
    seed: (s) => {
      fs.mkdirSync(path.join(s, 'tok'));
      fs.copyFileSync(art.tokenizer, path.join(s, 'tok', 'q.model'));
      fs.copyFileSync(art.vocab, path.join(s, 'tok', 'q.vocab'));
    },
    args: (m) => ['--input', art.qa, '--output-prefix', `${m}/tok/q`, '--vocab-size', '400', '--force', '--quiet'],
    names: (m) => new RegExp(`^${esc(m)}/tok/q\\.(model|vocab): no space left on the device`),
    room: 8192,
  },
  {
    name: 'tokenize: the output directory',
    command: 'tokenize',
    seed: (s) => fs.cpSync(art.shards, path.join(s, 'shards'), { recursive: true }),
    args: (m) => ['--input', art.qa, '--tokenizer', art.tokenizer, '--output-dir', `${m}/shards`, '--max-length', '48', '--force', '--quiet'],
    names: (m) => new RegExp(`^${under(`${m}/shards`)}: no space left on the device`),
    room: 8192,
  },
  {
    name: 'train: a new run (the user’s other files in the directory stay)',
    command: 'train',
    seed: (s) => {
      fs.mkdirSync(path.join(s, 'run'));
      fs.writeFileSync(path.join(s, 'run', 'notes.txt'), 'my notes on this run\n');
    },
    args: (m) => [...tinyTrainFlags, '--train-data', path.join(art.shards, 'train.npy'), '--val-data', path.join(art.shards, 'val.npy'), '--checkpoint-dir', `${m}/run`, '--max-steps', '2', '--eval-batches', '1'],
    names: (m) => new RegExp(`^${under(`${m}/run`)}: no space left on the device`),
    room: 8192,
  },
  {
    name: 'train --force over an existing run: the old run survives a new run that cannot be saved',
    command: 'train',
    seed: (s) => fs.cpSync(art.run, path.join(s, 'run'), { recursive: true }),
    args: (m) => [...tinyTrainFlags, '--train-data', path.join(art.shards, 'train.npy'), '--val-data', path.join(art.shards, 'val.npy'), '--checkpoint-dir', `${m}/run`, '--max-steps', '2', '--eval-batches', '1', '--force', ...biggerModel],
    names: (m) => new RegExp(`^${under(`${m}/run`)}: no space left on the device`),
    room: 8192,
    // Beyond item 8's message: --force used to remove the old run before the new one had a checkpoint, so a
    // new run that failed left the user with neither. Now the old run waits aside until then.
  },
  {
    name: 'generate --input-file -o',
    command: 'generate',
    seed: (s) => fs.writeFileSync(path.join(s, 'answers.jsonl'), '{"question":"my old answers","answer":"keep them"}\n'),
    args: (m) => ['--checkpoint', art.run, '--device', 'wasm', '--input-file', art.smallQa, '-o', `${m}/answers.jsonl`, '--force', '--max-new-tokens', '4'],
    names: (m) => new RegExp(`^${esc(m)}/answers\\.jsonl: no space left on the device`),
    room: 0,
  },
  {
    name: 'evaluate -o',
    command: 'evaluate',
    seed: (s) => fs.writeFileSync(path.join(s, 'answers.jsonl'), '{"question":"my old evaluation"}\n'),
    args: (m) => ['--checkpoint', art.run, '--device', 'wasm', '--data', art.smallQa, '--limit', '3', '-o', `${m}/answers.jsonl`, '--force', '--max-new-tokens', '4'],
    names: (m) => new RegExp(`^${esc(m)}/answers\\.jsonl: no space left on the device`),
    room: 0,
  },
];

describe('a full disk (a 2 MB tmpfs in a private mount namespace)', { concurrency: 2 }, () => {
  before(() => {
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$1" && echo ok', 'sh', tempDir()], { encoding: 'utf8' });
    if (r.error) unshareProblem = `unshare could not run: ${r.error.message} (util-linux's unshare is needed)`;
    else if (r.status !== 0 || r.stdout.trim() !== 'ok') unshareProblem = `unshare -rm + mount -t tmpfs failed (status ${r.status}): ${r.stderr.trim()}`;
    if (!unshareProblem) art = buildArtefacts('run');
  });

  it('can mount a tmpfs in a private mount namespace (unshare -rm)', () => {
    assert.equal(unshareProblem, null, `cannot test a full disk here: ${unshareProblem}`);
  });

  for (const c of cases) {
    it(c.name, async () => {
      assert.equal(unshareProblem, null, `cannot test a full disk here: ${unshareProblem}`);
      const dir = tempDir('gptmed-reliability-disk-');
      const mnt = path.join(dir, 'mnt');
      const seed = path.join(dir, 'seed');
      const res = path.join(dir, 'result');
      for (const d of [mnt, seed, res]) fs.mkdirSync(d);
      c.seed(seed);
      const args = c.args(mnt);
      const r = await runProcess('unshare', ['-rm', 'sh', '-c', SCRIPT, 'sh', ...args], {
        cwd: dir,
        timeoutMs: 120_000,
        env: { MNT: mnt, SEED: seed, RES: res, ROOM: String(c.room), NODE: process.execPath, BIN: binPath(c.command), SNAP: SNAPSHOT_JS },
      });
      assert.ok(!r.timedOut, `the run did not end within 120 s`);
      assert.equal(r.status, 0, `the namespace script failed (status ${r.status}): ${r.stderr}`);
      const read = (name: string): string => fs.readFileSync(path.join(res, name), 'utf8');
      const stderr = read('stderr');
      const context = `gptmed-${c.command} ${args.join(' ')}\n`;
      assert.equal(Number(read('rc')), 1, `${context}exit status ${read('rc').trim()}, expected 1; stderr:\n${stderr}`);
      assertOneErrorLine(c.command, stderr, c.names(mnt), context);
      const snap = (name: string): Snapshot => new Map(Object.entries(JSON.parse(read(name)) as Record<string, string>));
      const before = snap('before.json');
      assert.ok(before.size > 0, 'the user’s files were not put on the tmpfs');
      const problems = losses(before, snap('after.json'), 'tmpfs');
      assert.deepEqual(problems, [], `${context}the user lost something on the full disk:\n${problems.join('\n')}`);
    });
  }
});
