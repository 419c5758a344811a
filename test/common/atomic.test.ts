import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { AtomicFileWriter, refuseExisting, writeDirAtomic, writeFileAtomic } from '../../src/common/atomic.js';
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
