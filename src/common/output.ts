/**
 * An output is checked before the work that makes it: an -o that cannot be
 * written must not be found only after every answer was generated, nor a
 * read-only --output-dir after the whole input was tokenized.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { refuseExisting, tempPathFor } from './atomic.js';
import { UserError } from './errors.js';

/**
 * Refuse `target` unless it can be written: not a directory (for a file
 * output), not existing (unless `force`), and a file can be made where it
 * goes. Missing parent directories are fine (the writer makes them) if the
 * nearest existing one is writable.
 */
export function checkOutput(target: string, force: boolean, flag = '--output', kind: 'file' | 'directory' = 'file'): void {
  if (kind === 'file' && statOf(target)?.isDirectory()) throw new UserError(`${target}: is a directory; give ${flag} a file name`);
  refuseExisting(target, force);
  const dir = nearestExisting(path.dirname(path.resolve(target)));
  if (!statOf(dir)?.isDirectory()) throw new UserError(`${target}: ${dir} is not a directory; choose another ${flag}`);
  probeWritable(dir, target, flag);
}

/** The stats of `p`; undefined if nothing is there (a file in its path included: the caller says which). */
function statOf(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

function nearestExisting(dir: string): string {
  let d = dir;
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

/** Make and remove a file in `dir`: the only test that sees permissions, read-only mounts and a full inode table alike. */
function probeWritable(dir: string, target: string, flag: string): void {
  // Named as the writer's temporaries are, so a kill -9 right here leaves nothing the next run keeps.
  const probe = tempPathFor(path.join(dir, path.basename(target)));
  try {
    fs.writeFileSync(probe, '');
  } catch (err) {
    const cause = (err as Error).message.split(',')[0];
    throw new UserError(`${target}: cannot be written (${cause} in ${dir}); choose another ${flag} or fix the directory's permissions`);
  } finally {
    fs.rmSync(probe, { force: true });
  }
}
