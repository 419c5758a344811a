/**
 * The plain-text input of gptmed-tokenize (`--input-format text`), defined once:
 *
 *   a file       documents separated by blank lines (a line of only whitespace is blank);
 *                a document's lines are kept as they are (CRLF read as LF), joined by "\n"
 *   a directory  its `.txt` files, one document each, in name order (code-unit order, the
 *                same on every machine); blank lines inside a document are kept, the
 *                blank lines around it are not
 *
 * Read in chunks, one document held at a time: memory does not grow with the
 * corpus. UTF-8 only; invalid bytes stop the read with one line naming where.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../common/errors.js';
import { sha256File } from '../common/hash.js';
import { checkTextFile, LineSplitter, looksBinary, TextFileReader } from '../common/input.js';
import { startsWithQa, type TextInputFormat } from '../convert/qa-format.js';

/** The format `--input-format` names; auto: a directory is text, a file is Q&A when it starts with "Q:". */
export function resolveInputFormat(input: string, format: TextInputFormat): 'qa' | 'text' {
  if (format !== 'auto') return format;
  if (isDirectory(input)) return 'text';
  checkTextFile(input);
  return startsWithQa(input) ? 'qa' : 'text';
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The files a plain-text input reads, checked before any is read: the file itself, or the directory's `.txt`
 * files in name order (none: one line saying so; a binary one: named). Empty files are passed over.
 */
export function textInputFiles(input: string): string[] {
  if (!isDirectory(input)) {
    checkTextFile(input);
    return [input];
  }
  const names = fs
    .readdirSync(input, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.txt'))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length === 0) throw new UserError(`${input}: the directory holds no .txt files; give a directory of .txt documents or a text file`);
  const files = names.map((n) => path.join(input, n));
  for (const file of files) {
    if (fs.statSync(file).size > 0 && looksBinary(file)) throw new UserError(`${file}: looks like a binary file, not text; give UTF-8 .txt documents`);
  }
  return files;
}

/** sha256 of the input: the file's bytes, or for a directory of documents, of its `name sha256` lines in order. */
export function textInputHash(input: string, files: readonly string[]): string {
  if (!isDirectory(input)) return sha256File(input);
  const listing = files.map((f) => `${path.basename(f)} ${sha256File(f)}\n`).join('');
  return crypto.createHash('sha256').update(listing).digest('hex');
}

const ADVICE = 'convert the file to UTF-8 (gptmed-tokenize reads UTF-8 text)';

/** The documents of `input` (from textInputFiles), in order; `onRead` gets the bytes read so far. */
export async function* readDocuments(input: string, files: readonly string[], onRead?: (bytes: number) => void): AsyncGenerator<string> {
  const directory = isDirectory(input);
  let done = 0;
  for (const file of files) {
    const reader = new TextFileReader(file, { advice: ADVICE });
    const doc = new DocumentLines(!directory);
    const lines = new LineSplitter();
    for await (const chunk of reader.chunks()) {
      for (const line of lines.push(chunk)) {
        const ended = doc.add(line);
        if (ended !== null) yield ended;
      }
      onRead?.(done + reader.bytesRead);
    }
    for (const line of lines.end()) {
      const ended = doc.add(line);
      if (ended !== null) yield ended;
    }
    const last = doc.end();
    if (last !== null) yield last;
    done += reader.bytesRead;
  }
}

/** Lines into documents: a blank line ends one (`blankEnds`), or is kept inside it (a directory's file). */
class DocumentLines {
  private lines: string[] = [];
  /** Blank lines seen since the last non-blank one (kept only if more text follows). */
  private blanks = 0;

  constructor(private readonly blankEnds: boolean) {}

  /** The document the line ends, else null. */
  add(line: string): string | null {
    if (line.trim() !== '') {
      if (this.lines.length > 0) for (; this.blanks > 0; this.blanks--) this.lines.push('');
      this.blanks = 0;
      this.lines.push(line);
      return null;
    }
    if (this.blankEnds) return this.end();
    this.blanks++;
    return null;
  }

  /** The document so far (null when it has no text), and a fresh start. */
  end(): string | null {
    const text = this.lines.length > 0 ? this.lines.join('\n') : null;
    this.lines = [];
    this.blanks = 0;
    return text;
  }
}
