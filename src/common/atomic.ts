/**
 * Writing outputs so that a kill at any moment leaves the old file or the new
 * one, never half of one: write to a temporary sibling, fsync, rename.
 * Existing outputs are refused unless the user passed --force.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OutputError, outputError, UserError } from './errors.js';

let counter = 0;
/**
 * A temporary path beside `target`, on the same filesystem so rename is atomic.
 * What earlier processes writing `target` left behind is settled first (see
 * `settleLeftovers`). The temporary is removed if this process exits before
 * it is renamed into place (an error, Ctrl-C).
 */
export function tempPathFor(target: string): string {
  settleLeftovers(target);
  const tmp = path.join(path.dirname(target), `${tempPrefix(target)}${process.pid}-${Date.now()}-${counter++}`);
  removeOnExit.add(tmp);
  return tmp;
}

const tempPrefix = (target: string): string => `.${path.basename(target)}.tmp-`;
const asidePrefix = (target: string): string => `.${path.basename(target)}.old-`;
const journalPrefix = (target: string): string => `.${path.basename(target)}.commit-`;

/**
 * Finish or undo what a process killed while writing `target` (SIGKILL, which
 * no handler sees) left beside it, in an order that never loses the only copy
 * of an output:
 * 1. a commit journal (`commitFiles`) is rolled forward: its files were whole;
 * 2. an output moved aside by `writeDirAtomic` comes back if nothing replaced
 *    it, and is removed if its replacement is in place;
 * 3. temporaries are removed: a killed gptmed-tokenize leaves a scratch
 *    directory as large as its token ids.
 * Leftovers of a process that still runs are not touched.
 */
function settleLeftovers(target: string): void {
  const dir = path.dirname(target);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return; // no directory yet: nothing left behind
  }
  const dead = (prefix: string): string[] =>
    names.filter((n) => n.startsWith(prefix) && !isRunning(Number.parseInt(n.slice(prefix.length), 10)));
  for (const journal of dead(journalPrefix(target))) rollForward(dir, journal);
  const newestFirst = dead(asidePrefix(target)).sort((a, b) => stamp(b) - stamp(a));
  for (const aside of newestFirst) {
    if (fs.existsSync(target)) fs.rmSync(path.join(dir, aside), { recursive: true, force: true });
    else fs.renameSync(path.join(dir, aside), target); // the newest copy the user had
  }
  for (const tmp of dead(tempPrefix(target))) fs.rmSync(path.join(dir, tmp), { recursive: true, force: true });
}

/** The time in a leftover's name (`<prefix><pid>-<ms>-...`). */
const stamp = (name: string): number => Number(/\.[a-z]+-\d+-(\d+)/.exec(name)?.[1] ?? 0);

/** Whether process `pid` runs on this machine (a name's pid that is not a number counts as running: left alone). */
export function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return true; // not a name we wrote: leave it alone
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
  settleLeftovers(target); // an output a killed run moved aside counts as existing
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
    throw outputError(err, target);
  } finally {
    removeOnExit.delete(tmp);
  }
}

/**
 * Write files that belong together (a tokenizer's .model and .vocab, all in
 * one directory) so that a kill at any moment leaves all of them old or all
 * new: each is written to a temporary, then a journal listing the renames (the
 * commit point), then the renames are made and the journal removed. The next
 * writer rolls a killed process's journal forward (`settleLeftovers`, in the
 * first file's name); temporaries with no journal are removed.
 */
export function commitFiles(files: ReadonlyArray<readonly [target: string, data: string | Uint8Array]>): void {
  const dir = path.dirname(files[0][0]);
  fs.mkdirSync(dir, { recursive: true });
  const renames: Array<[string, string]> = [];
  let writing = files[0][0];
  try {
    for (const [target, data] of files) {
      writing = target;
      const tmp = tempPathFor(target);
      renames.push([path.basename(tmp), path.basename(target)]);
      fs.writeFileSync(tmp, data);
      fsyncPath(tmp);
    }
    const journal = `${journalPrefix(files[0][0])}${process.pid}-${Date.now()}`;
    fs.writeFileSync(path.join(dir, journal), JSON.stringify(renames));
    fsyncPath(path.join(dir, journal));
    rollForward(dir, journal);
  } catch (err) {
    throw outputError(err, writing);
  } finally {
    for (const [tmp] of renames) {
      fs.rmSync(path.join(dir, tmp), { force: true }); // left only by a failure: the journal renamed the rest
      removeOnExit.delete(path.join(dir, tmp));
    }
  }
}

/** Make the renames a commit journal lists (those not made yet), then remove it. */
function rollForward(dir: string, journal: string): void {
  let renames: Array<[string, string]> = [];
  try {
    renames = JSON.parse(fs.readFileSync(path.join(dir, journal), 'utf8')) as Array<[string, string]>;
  } catch {
    // Cut short before the commit point: nothing to finish, its temporaries go as any others.
  }
  for (const [tmp, target] of renames) {
    if (fs.existsSync(path.join(dir, tmp))) fs.renameSync(path.join(dir, tmp), path.join(dir, target));
  }
  fsyncPath(dir);
  fs.rmSync(path.join(dir, journal), { force: true });
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
    this.tmp = tempPathFor(target);
    this.fd = this.named(() => {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      if (opts.append && fs.existsSync(target)) fs.copyFileSync(target, this.tmp);
      return fs.openSync(this.tmp, opts.append ? 'a' : 'w');
    });
  }

  write(data: string | Uint8Array): void {
    const fd = this.fd;
    if (fd === null) throw new Error('AtomicFileWriter: write after close');
    this.named(() => (typeof data === 'string' ? fs.writeSync(fd, data, null, 'utf8') : fs.writeSync(fd, data)));
  }

  commit(): void {
    const fd = this.fd;
    if (fd === null) return;
    this.named(() => {
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      this.fd = null;
      fs.renameSync(this.tmp, this.target);
    });
    removeOnExit.delete(this.tmp);
  }

  /** Run `io`; a system error (a full disk) names the output, not the temporary. */
  private named<T>(io: () => T): T {
    try {
      return io();
    } catch (err) {
      throw outputError(err, this.target);
    }
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
 * directory is renamed into place. A directory cannot be renamed over another,
 * so an existing `target` is first moved aside under a name that
 * `settleLeftovers` puts back if a kill comes before the new one is in place,
 * and removed only after that.
 */
export function writeDirAtomic(target: string, fill: (dir: string) => void): void {
  const tmp = tempPathFor(target);
  const aside = path.join(path.dirname(target), `${asidePrefix(target)}${process.pid}-${Date.now()}`);
  try {
    fs.mkdirSync(tmp, { recursive: true });
    fill(tmp);
    for (const name of fs.readdirSync(tmp)) fsyncPath(path.join(tmp, name));
    if (fs.existsSync(target)) fs.renameSync(target, aside);
    fs.renameSync(tmp, target);
    fs.rmSync(aside, { recursive: true, force: true });
    fsyncPath(path.dirname(target));
  } catch (err) {
    if (fs.existsSync(aside) && !fs.existsSync(target)) fs.renameSync(aside, target);
    fs.rmSync(tmp, { recursive: true, force: true });
    const named = outputError(err, target);
    throw named instanceof OutputError ? named.renamed(tmp, target) : named;
  } finally {
    removeOnExit.delete(tmp);
  }
}

/** Temporary files still open when the process exits (an error, Ctrl-C) are removed. */
const removeOnExit = new Set<string>();
process.on('exit', () => {
  for (const p of removeOnExit) fs.rmSync(p, { recursive: true, force: true });
});
