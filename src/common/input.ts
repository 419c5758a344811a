/** Checks every stage makes on an input file before reading it, and the reading of user text: decoded, checked, cut into lines. */
import * as fs from 'node:fs';
import { TextDecoder } from 'node:util';
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

/** Encodings gptmed-convert reads (`--encoding`); every other reader takes UTF-8. */
export const TEXT_ENCODINGS = ['utf8', 'latin1', 'utf16'] as const;
export type TextEncoding = (typeof TEXT_ENCODINGS)[number];

export interface TextReadOptions {
  /** Default utf8. A byte order mark overrides it: UTF-8, UTF-16 LE or BE. utf16 without one is LE. */
  encoding?: TextEncoding;
  /** What to do about invalid UTF-8, after the `;` of the error line. */
  advice?: string;
  chunkBytes?: number;
}

type Decoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'latin1';
type CheckedDecoding = Exclude<Decoding, 'latin1'>;

/** The encoding a byte order mark names, and the mark's length; null without one. */
function byteOrderMark(head: Uint8Array): { decoding: Decoding; length: number } | null {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { decoding: 'utf-8', length: 3 };
  if (head[0] === 0xff && head[1] === 0xfe) return { decoding: 'utf-16le', length: 2 };
  if (head[0] === 0xfe && head[1] === 0xff) return { decoding: 'utf-16be', length: 2 };
  return null;
}

function readHead(file: string, bytes: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, fs.readSync(fd, buf, 0, bytes, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/** How a file is decoded: its byte order mark decides, else the encoding asked for; `bom` is the mark's length. */
function fileDecoding(file: string, encoding: TextEncoding = 'utf8'): { decoding: Decoding; bom: number } {
  const bom = byteOrderMark(readHead(file, 3));
  if (bom) return { decoding: bom.decoding, bom: bom.length };
  return { decoding: encoding === 'utf8' ? 'utf-8' : encoding === 'utf16' ? 'utf-16le' : 'latin1', bom: 0 };
}

/** True when the file is UTF-16 (by its byte order mark, or as asked): text, although it holds NUL bytes. */
export function isUtf16File(file: string, encoding?: TextEncoding): boolean {
  return fileDecoding(file, encoding).decoding.startsWith('utf-16');
}

function decoderFor(decoding: CheckedDecoding): TextDecoder {
  // ignoreBOM: the mark is skipped by offset, so a second one is kept as text.
  return new TextDecoder(decoding, { fatal: true, ignoreBOM: true });
}

function isDecodeError(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ERR_ENCODING_INVALID_ENCODED_DATA';
}

/** The first `bytes` of a file as text, for a look at its start; bad bytes become U+FFFD here (the full read refuses them). */
export function peekText(file: string, bytes: number, encoding?: TextEncoding): string {
  const { decoding, bom } = fileDecoding(file, encoding);
  const head = readHead(file, bytes).subarray(bom);
  return decoding === 'latin1' ? head.toString('latin1') : new TextDecoder(decoding, { ignoreBOM: true }).decode(head);
}

/**
 * Length of the well-formed UTF-8 sequence at buf[i] (Unicode table 3-7):
 * 0 when it is ill-formed, -1 when the buffer ends before it does.
 */
function utf8SequenceLength(buf: Uint8Array, i: number): number {
  const b = buf[i];
  if (b < 0x80) return 1;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) n = 2;
  else if (b >= 0xe0 && b <= 0xef) {
    n = 3;
    if (b === 0xe0) lo = 0xa0; // no overlong forms
    else if (b === 0xed) hi = 0x9f; // no surrogates
  } else if (b >= 0xf0 && b <= 0xf4) {
    n = 4;
    if (b === 0xf0) lo = 0x90;
    else if (b === 0xf4) hi = 0x8f; // nothing above U+10FFFF
  } else return 0;
  for (let k = 1; k < n; k++) {
    if (i + k >= buf.length) return -1;
    const c = buf[i + k];
    if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return 0;
  }
  return n;
}

/** Bytes of the UTF-16 sequence at buf[i]: 2, or 4 for a surrogate pair; 0 when ill-formed, -1 when cut off. */
function utf16SequenceLength(buf: Uint8Array, i: number, bigEndian: boolean): number {
  const unit = (j: number): number => (bigEndian ? (buf[j] << 8) | buf[j + 1] : buf[j] | (buf[j + 1] << 8));
  if (i + 1 >= buf.length) return -1;
  const u = unit(i);
  if (u < 0xd800 || u > 0xdfff) return 2;
  if (u > 0xdbff) return 0;
  if (i + 3 >= buf.length) return -1;
  const low = unit(i + 2);
  return low >= 0xdc00 && low <= 0xdfff ? 4 : 0;
}

/** How to step through one encoding: the length of the sequence at buf[i], and whether it is a line feed. */
function scanner(decoding: CheckedDecoding): { length: (buf: Uint8Array, i: number) => number; isLf: (buf: Uint8Array, i: number) => boolean } {
  if (decoding === 'utf-8') return { length: utf8SequenceLength, isLf: (b, i) => b[i] === 0x0a };
  const be = decoding === 'utf-16be';
  return {
    length: (b, i) => utf16SequenceLength(b, i, be),
    isLf: (b, i) => (be ? b[i] === 0 && b[i + 1] === 0x0a : b[i] === 0x0a && b[i + 1] === 0),
  };
}

/**
 * Where the first invalid sequence of a file is: its byte offset from the
 * start of the file and its line. Run only once decoding has failed, so a
 * good file pays nothing for the line count.
 */
function locateInvalid(file: string, decoding: CheckedDecoding, from: number): { offset: number; line: number } {
  const { length, isLf } = scanner(decoding);
  const fd = fs.openSync(file, 'r');
  try {
    let line = 1;
    let base = from; // file offset of pending[0]
    let pending = Buffer.alloc(0);
    const chunk = Buffer.alloc(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, base + pending.length);
      const buf = Buffer.concat([pending, chunk.subarray(0, n)]);
      let i = 0;
      while (i < buf.length) {
        const len = length(buf, i);
        if (len === 0 || (len === -1 && n === 0)) return { offset: base + i, line };
        if (len === -1) break;
        if (isLf(buf, i)) line++;
        i += len;
      }
      if (n === 0) return { offset: base + i, line };
      pending = buf.subarray(i);
      base += i;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function invalidTextError(file: string, decoding: CheckedDecoding, from: number, advice = 'convert the file to UTF-8'): UserError {
  const { offset, line } = locateInvalid(file, decoding, from);
  if (decoding === 'utf-8') return new UserError(`${file}:${line}: invalid UTF-8 at byte ${offset}; ${advice}`);
  return new UserError(`${file}:${line}: invalid UTF-16 at byte ${offset} (an unpaired surrogate, or an odd number of bytes); check the file and --encoding`);
}

/**
 * A text file read in chunks of decoded text, in time linear in its size.
 * Bytes that are not valid in the encoding stop the read with one line
 * naming the file, line and byte offset: they never become U+FFFD quietly.
 * A byte order mark is not part of the text.
 */
export class TextFileReader {
  /** Bytes read so far, for progress. */
  bytesRead = 0;
  constructor(
    readonly file: string,
    private readonly opts: TextReadOptions = {},
  ) {}

  async *chunks(): AsyncGenerator<string> {
    const { decoding, bom } = fileDecoding(this.file, this.opts.encoding);
    this.bytesRead = bom;
    const stream = fs.createReadStream(this.file, { start: bom, highWaterMark: this.opts.chunkBytes ?? 1 << 16 });
    try {
      if (decoding === 'latin1') {
        // Every byte is a character: nothing to check, nothing carried between chunks.
        for await (const chunk of stream) yield this.count(chunk as Buffer).toString('latin1');
        return;
      }
      const decoder = decoderFor(decoding);
      try {
        for await (const chunk of stream) yield decoder.decode(this.count(chunk as Buffer), { stream: true });
        yield decoder.decode();
      } catch (err) {
        if (!isDecodeError(err)) throw err;
        throw invalidTextError(this.file, decoding, bom, this.opts.advice);
      }
    } finally {
      stream.destroy();
    }
  }

  private count(chunk: Buffer): Buffer {
    this.bytesRead += chunk.length;
    return chunk;
  }
}

/** A whole text file as a string, decoded and checked as TextFileReader does. */
export function readTextFile(file: string, opts: TextReadOptions = {}): string {
  const { decoding, bom } = fileDecoding(file, opts.encoding);
  const bytes = fs.readFileSync(file).subarray(bom);
  if (decoding === 'latin1') return bytes.toString('latin1');
  try {
    return decoderFor(decoding).decode(bytes);
  } catch (err) {
    if (!isDecodeError(err)) throw err;
    throw invalidTextError(file, decoding, bom, opts.advice);
  }
}

/**
 * Cuts chunks of text into lines (at LF, dropping the CR of a CRLF). Each
 * character is scanned once: a line that spans many chunks is kept as its
 * pieces and joined once, when it ends, so one huge line costs linear time.
 */
export class LineSplitter {
  private pieces: string[] = [];
  /** Characters of the unfinished line so far. */
  pendingChars = 0;

  /** The lines the chunk completes. */
  push(chunk: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      lines.push(this.finish(chunk.slice(start, nl)));
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.pieces.push(chunk.slice(start));
      this.pendingChars += chunk.length - start;
    }
    return lines;
  }

  /** The last line, when the text does not end with a newline. */
  end(): string[] {
    return this.pieces.length > 0 ? [this.finish('')] : [];
  }

  private finish(tail: string): string {
    let line = tail;
    if (this.pieces.length > 0) {
      this.pieces.push(tail);
      line = this.pieces.join('');
      this.pieces = [];
      this.pendingChars = 0;
    }
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  }
}
