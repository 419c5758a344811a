/**
 * gptmed-convert on hostile input (issue 10): one huge JSONL line (item 13),
 * a damaged SQLite file (item 9), several statements in --query (item 15),
 * -o naming a directory (item 11). Each failure is one line, with the right exit status, and leaves nothing.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { LineSplitter } from '../../src/common/input.js';
import { fixturesDir, runCli, tempDir } from '../helpers.js';

/** gptmed-convert `args` into a fresh directory: exit status, stderr lines, output text (if any), what the directory holds. */
function convert(args: string[], dir = tempDir()): { status: number | null; lines: string[]; output?: string; left: string[] } {
  const out = path.join(dir, 'out.qa.txt');
  const r = runCli('convert', ['--quiet', ...args, '-o', out]);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/);
  const output = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : undefined;
  return { status: r.status, lines: r.stderr.trim().split('\n'), output, left: fs.readdirSync(dir) };
}

test('JSONL: one line of over 24 MB converts whole (it used to take time quadratic in its length)', () => {
  const dir = tempDir();
  const input = path.join(dir, 'big.jsonl');
  // Multi-byte characters, so the line also spans chunk reads mid-character.
  const answer = 'Grüße, café — ok. '.repeat(1_200_000);
  fs.writeFileSync(input, `${JSON.stringify({ question: 'Short?', answer: 'yes' })}\r\n${JSON.stringify({ question: 'Long?', answer })}\r\n`);
  assert.ok(fs.statSync(input).size > 24e6);
  const r = convert([input], dir);
  assert.equal(r.status, 0, r.lines.join('\n'));
  assert.equal(r.output, `Q: Short?\nA: yes\n\nQ: Long?\nA: ${answer.trimEnd()}\n\n`);
});

test('the line splitter joins a line spread over many chunks, and drops the CR of a CRLF cut between chunks', () => {
  const splitter = new LineSplitter();
  const lines: string[] = [];
  for (const chunk of ['ab', 'c', 'd\r', '\nef\r\n', '', 'g', 'h\r']) lines.push(...splitter.push(chunk));
  lines.push(...splitter.end());
  assert.deepEqual(lines, ['abcd', 'ef', 'gh']);
  assert.deepEqual(new LineSplitter().end(), []);
});

const latexDb = path.join(fixturesDir, 'convert', 'latex.db');

/** latex.db with bytes from `from` on overwritten, or its first 100 bytes (the header) and garbage. */
function damagedDb(dir: string, from: number): string {
  const db = Buffer.from(fs.readFileSync(latexDb));
  const damaged = from < db.length ? db.fill(0xab, from) : Buffer.concat([db.subarray(0, 100), Buffer.alloc(20000, 0xab)]);
  const file = path.join(dir, 'damaged.db');
  fs.writeFileSync(file, damaged);
  return file;
}

test('SQLite: a file with the SQLite header and a damaged body is one line naming it, exit 1', () => {
  const cases: string[][] = [[], ['--table', 'phrases', '--question-col', 'tabkeys', '--answer-col', 'phrase'], ['--query', 'SELECT tabkeys, phrase FROM phrases']];
  for (const [from, flags] of [[Infinity, cases[0]], [8192, cases[1]], [8192, cases[2]]] as const) {
    const dir = tempDir();
    const db = damagedDb(dir, from);
    const r = convert([db, ...flags], dir);
    assert.equal(r.status, 1, r.lines.join('\n'));
    assert.deepEqual(r.lines, [`gptmed-convert: error: ${db}: not a valid SQLite database (corrupt: database disk image is malformed); check the file`]);
    assert.deepEqual(r.left, ['damaged.db']);
  }
});

test('SQLite: --query with more than one statement is a usage error; a trailing ; or comment is fine', () => {
  const dir = tempDir();
  const before = fs.readFileSync(latexDb);
  for (const extra of ['; DELETE FROM phrases', '; SELECT 1, 2', '; not even SQL']) {
    const r = convert([latexDb, '--query', `SELECT tabkeys, phrase FROM phrases${extra}`], dir);
    assert.equal(r.status, 2, extra);
    assert.equal(r.lines.length, 1);
    assert.match(r.lines[0], /^gptmed-convert: error: --query holds more than one SQL statement; give a single SELECT/);
    assert.deepEqual(r.left, []);
  }
  assert.deepEqual(fs.readFileSync(latexDb), before);
  const ok = convert([latexDb, '--query', 'SELECT tabkeys, phrase FROM phrases LIMIT 2; -- two rows\n;'], dir);
  assert.equal(ok.status, 0, ok.lines.join('\n'));
  assert.equal(ok.output?.match(/^Q: /gm)?.length, 2);
});

test('-o naming a directory is one line naming it, with or without --force or --append, and the directory is left as it was', () => {
  const faq = path.join(fixturesDir, 'convert', 'faq.csv');
  for (const flags of [[], ['--force'], ['--append']]) {
    const dir = tempDir();
    const target = path.join(dir, 'data');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep.qa.txt'), 'Q: a?\nA: b\n\n');
    const r = runCli('convert', ['--quiet', faq, '-o', target, ...flags]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), `gptmed-convert: error: ${target}: is a directory; give the path of the Q&A text file to write`, flags.join(' '));
    assert.deepEqual(fs.readdirSync(dir), ['data']);
    assert.deepEqual(fs.readdirSync(target), ['keep.qa.txt']);
  }
});
