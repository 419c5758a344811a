/**
 * Writing outputs so that a kill at any moment leaves the old file or the new
 * one, never half of one: write to a temporary sibling, fsync, rename.
 * Existing outputs are refused unless the user passed --force.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './errors.js';

let counter = 0;
/**
 * A temporary path beside `target`, on the same filesystem so rename is atomic.
 * Temporaries of `target` left by a process that no longer runs (killed with
 * SIGKILL, which no handler sees) are removed first: a killed gptmed-tokenize
 * leaves a scratch directory as large as its token ids.
 */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}.tmp-`;
  removeOrphans(dir, prefix);
  return path.join(dir, `${prefix}${process.pid}-${Date.now()}-${counter++}`);
}

function removeOrphans(dir: string, prefix: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return; // no directory yet: nothing left behind
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number.parseInt(name.slice(prefix.length), 10);
    if (Number.isInteger(pid) && pid > 0 && !isRunning(pid)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Refuse an existing output unless `force`; `flag` names the option for the message. */
export function refuseExisting(target: string, force: boolean, flag = '--force'): void {
  if (!force && fs.existsSync(target)) {
    throw new UserError(`${target} already exists; choose another output or pass ${flag} to overwrite it`);
  }
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  } finally {
    fs.closeSync(fd);
  }
}

/** Write a whole file atomically. */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  try {
    fs.writeFileSync(tmp, data);
    fsyncPath(tmp);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * A file written in pieces (streamed output). Nothing appears at `target`
 * until `commit()`; `abort()` (or an exception before commit) leaves the old
 * file untouched. With `append`, the existing file's bytes are copied first.
 */
export class AtomicFileWriter {
  readonly target: string;
  private readonly tmp: string;
  private fd: number | null;

  constructor(target: string, opts: { append?: boolean } = {}) {
    this.target = target;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    this.tmp = tempPathFor(target);
    if (opts.append && fs.existsSync(target)) fs.copyFileSync(target, this.tmp);
    this.fd = fs.openSync(this.tmp, opts.append ? 'a' : 'w');
    removeOnExit.add(this.tmp);
  }

  write(data: string | Uint8Array): void {
    if (this.fd === null) throw new Error('AtomicFileWriter: write after close');
    if (typeof data === 'string') fs.writeSync(this.fd, data, null, 'utf8');
    else fs.writeSync(this.fd, data);
  }

  commit(): void {
    if (this.fd === null) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
    fs.renameSync(this.tmp, this.target);
    removeOnExit.delete(this.tmp);
  }

  abort(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    fs.rmSync(this.tmp, { force: true });
    removeOnExit.delete(this.tmp);
  }
}

/**
 * Write a directory atomically: `fill(tmpDir)` writes its files, then the
 * directory is renamed into place. An existing directory at `target` is
 * replaced (moved aside, then removed) only after the new one is complete.
 */
export function writeDirAtomic(target: string, fill: (dir: string) => void): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  fs.mkdirSync(tmp);
  removeOnExit.add(tmp);
  try {
    fill(tmp);
    for (const name of fs.readdirSync(tmp)) fsyncPath(path.join(tmp, name));
    if (fs.existsSync(target)) {
      const old = tempPathFor(target);
      fs.renameSync(target, old);
      fs.renameSync(tmp, target);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, target);
    }
    fsyncPath(path.dirname(target));
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    removeOnExit.delete(tmp);
  }
}

/** Temporary files still open when the process exits (an error, Ctrl-C) are removed. */
const removeOnExit = new Set<string>();
process.on('exit', () => {
  for (const p of removeOnExit) fs.rmSync(p, { recursive: true, force: true });
});
