import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { AtomicFileWriter, refuseExisting, tempPathFor, writeDirAtomic, writeFileAtomic } from '../../src/common/atomic.js';
import { UserError } from '../../src/common/errors.js';
import { tempDir } from '../helpers.js';

test('writeFileAtomic replaces the file whole and leaves no temporary behind', () => {
  const dir = tempDir();
  const f = path.join(dir, 'out.txt');
  writeFileAtomic(f, 'old');
  writeFileAtomic(f, 'new contents');
  assert.equal(fs.readFileSync(f, 'utf8'), 'new contents');
  assert.deepEqual(fs.readdirSync(dir), ['out.txt']);
});

test('AtomicFileWriter: nothing appears before commit, abort keeps the old file', () => {
  const dir = tempDir();
  const f = path.join(dir, 'out.txt');
  fs.writeFileSync(f, 'precious');
  const w = new AtomicFileWriter(f);
  w.write('half of a new ');
  assert.equal(fs.readFileSync(f, 'utf8'), 'precious');
  w.abort();
  assert.equal(fs.readFileSync(f, 'utf8'), 'precious');
  assert.deepEqual(fs.readdirSync(dir), ['out.txt']);
  const w2 = new AtomicFileWriter(f);
  w2.write('replaced');
  w2.commit();
  assert.equal(fs.readFileSync(f, 'utf8'), 'replaced');
});

test('AtomicFileWriter with append keeps the existing bytes', () => {
  const dir = tempDir();
  const f = path.join(dir, 'out.txt');
  fs.writeFileSync(f, 'one\n');
  const w = new AtomicFileWriter(f, { append: true });
  w.write('two\n');
  w.commit();
  assert.equal(fs.readFileSync(f, 'utf8'), 'one\ntwo\n');
});

test('writeDirAtomic: a failure while filling leaves the previous directory intact', () => {
  const dir = tempDir();
  const target = path.join(dir, 'ckpt');
  writeDirAtomic(target, (d) => fs.writeFileSync(path.join(d, 'a'), '1'));
  assert.throws(() =>
    writeDirAtomic(target, (d) => {
      fs.writeFileSync(path.join(d, 'a'), '2');
      throw new Error('disk full');
    }),
  );
  assert.equal(fs.readFileSync(path.join(target, 'a'), 'utf8'), '1');
  writeDirAtomic(target, (d) => fs.writeFileSync(path.join(d, 'b'), '3'));
  assert.deepEqual(fs.readdirSync(target), ['b']);
  assert.deepEqual(fs.readdirSync(dir), ['ckpt']);
});

test('refuseExisting names the file and the flag', () => {
  const dir = tempDir();
  const f = path.join(dir, 'x');
  refuseExisting(f, false);
  fs.writeFileSync(f, '');
  assert.throws(() => refuseExisting(f, false), (e: unknown) => e instanceof UserError && e.message.includes(f) && e.message.includes('--force'));
  refuseExisting(f, true);
});

test('a temporary left by a killed process is removed by the next writer of the same output; a live one is kept', () => {
  const dir = tempDir();
  const out = path.join(dir, 'shards');
  // A process that was SIGKILLed: its pid no longer runs.
  const killed = spawnSync(process.execPath, ['-e', 'process.kill(process.pid, "SIGKILL")']);
  assert.equal(killed.signal, 'SIGKILL');
  const orphan = path.join(dir, `.shards.tmp-${killed.pid}-1-0`);
  const live = path.join(dir, `.shards.tmp-${process.pid}-1-0`);
  const other = path.join(dir, `.other.tmp-${killed.pid}-1-0`);
  for (const d of [orphan, live, other]) {
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'pairs.ids'), 'x');
  }
  const next = tempPathFor(out);
  assert.equal(fs.existsSync(orphan), false, 'the dead process\'s temporary is gone');
  assert.equal(fs.existsSync(live), true, 'a running process\'s temporary is kept');
  assert.equal(fs.existsSync(other), true, 'another output\'s temporary is not touched');
  assert.ok(path.basename(next).startsWith(`.shards.tmp-${process.pid}-`));
});
