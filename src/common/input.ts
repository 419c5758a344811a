/** Checks every stage makes on an input file before reading it. */
import * as fs from 'node:fs';
import { UserError } from './errors.js';

/** The file exists, is a regular file, and is not empty; returns its size. */
export function checkInputFile(file: string, what = 'input'): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new UserError(`${file}: ${what} file not found`);
  }
  if (st.isDirectory()) throw new UserError(`${file}: is a directory; give the ${what} file`);
  if (st.size === 0) throw new UserError(`${file}: ${what} file is empty`);
  return st.size;
}

/** True when the first 8 KB look like binary data (NUL bytes), not text. */
export function looksBinary(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(8192);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).includes(0);
  } finally {
    fs.closeSync(fd);
  }
}

/** Refuse binary files where text is expected. */
export function checkTextFile(file: string, what = 'input'): number {
  const size = checkInputFile(file, what);
  if (looksBinary(file)) throw new UserError(`${file}: looks like a binary file, not text; give a UTF-8 text ${what} file`);
  return size;
}
