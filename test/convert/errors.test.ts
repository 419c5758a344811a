/**
 * Bad input to gptmed-convert: each case is one line on stderr naming the
 * file (and line or field), a non-zero exit, and no output left behind.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { sha256File } from '../../src/common/hash.js';
import { fixturesDir, runCli, tempDir } from '../helpers.js';

const fx = (name: string) => path.join(fixturesDir, 'convert', name);

/** Runs a conversion that must fail; returns its one error line. The output directory must stay as it was. */
function fails(args: string[], opts: { dir?: string; status?: number } = {}): string {
  const dir = opts.dir ?? tempDir();
  const before = fs.readdirSync(dir).sort();
  const out = path.join(dir, 'out.qa.txt');
  const r = runCli('convert', ['--quiet', ...args, '-o', out]);
  assert.equal(r.status, opts.status ?? 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/);
  assert.deepEqual(fs.readdirSync(dir).sort(), before, 'no output or temporary file is left behind');
  return lines[0];
}

/** A file in a fresh directory holding `content`; returns [file, dir]. */
function file(name: string, content: string | Uint8Array): [string, string] {
  const dir = tempDir();
  const f = path.join(dir, name);
  fs.writeFileSync(f, content);
  return [f, dir];
}

test('missing input', () => {
  const dir = tempDir();
  const missing = path.join(dir, 'nope.csv');
  assert.equal(fails([missing], { dir }), `gptmed-convert: error: ${missing}: input file not found`);
});

test('empty input, and input with no pairs in it', () => {
  const [empty, dir] = file('empty.csv', '');
  assert.equal(fails([empty], { dir }), `gptmed-convert: error: ${empty}: input file is empty`);
  const [headerOnly, dir2] = file('header.csv', 'question,answer\r\n');
  assert.match(fails([headerOnly], { dir: dir2 }), /header\.csv: no Q&A pairs found \(0 rows read; skipped: none\)/);
  const [blankAnswers, dir3] = file('blank.jsonl', '{"question": "Why?", "answer": "  "}\n');
  assert.match(fails([blankAnswers], { dir: dir3 }), /no Q&A pairs found \(1 rows read; skipped: 1 empty answer\)/);
});

test('a binary file where text is expected, and a text file given as SQLite', () => {
  const [binary, dir] = file('table.csv', fs.readFileSync(fx('latex.db')));
  assert.match(fails([binary], { dir }), /table\.csv: looks like a binary file, not csv text/);
  assert.match(fails([fx('faq.csv'), '--format', 'sqlite']), /faq\.csv: not an SQLite database/);
});

test('invalid JSON: the line (and column) for JSON, the line for JSONL', () => {
  const [json, dir] = file('bad.json', '[\n  {"question": "a?", "answer": "b"},\n  {"question": "c?", "answer" "d"}\n]\n');
  assert.match(fails([json], { dir }), /bad\.json:3: invalid JSON: Unexpected string at column 31$/);
  const [jsonl, dir2] = file('bad.jsonl', '{"question": "a?", "answer": "b"}\n\n{"question": "c?", answer: "d"}\n');
  assert.match(fails([jsonl], { dir: dir2 }), /bad\.jsonl:3: invalid JSON: .*; each line must be one JSON object$/);
  const [notObject, dir3] = file('list.jsonl', '["a?", "b"]\n');
  assert.match(fails([notObject], { dir: dir3 }), /list\.jsonl:1: expected an object, found an array$/);
});

test('an object without any recognised field names the fields it has', () => {
  const [jsonl, dir] = file('odd.jsonl', '{"question": "a?", "answer": "b"}\n{"title": "c?", "body": "d", "score": 3}\n');
  assert.match(fails([jsonl], { dir }), /odd\.jsonl:2: object has no recognised field \(it has "title", "body", "score"\); expected question\/answer, .*--question-col and --answer-col$/);
  const [json, dir2] = file('odd.json', JSON.stringify([{ text: 'x' }]));
  assert.match(fails([json], { dir: dir2 }), /odd\.json: element 1: object has no recognised field \(it has "text"\)/);
  // Fields named by flag that the object does not have.
  assert.match(fails([fx('question-answer.jsonl'), '--question-col', 'title', '--answer-col', 'body']), /question-answer\.jsonl:1: object has no recognised field \(it has "question", "answer"\); expected "title" and "body"/);
});

test('unknown table or column lists the ones that exist; names are never pasted into SQL', () => {
  assert.match(fails([fx('latex.db'), '--table', 'faq']), /latex\.db: no table "faq"; the tables are "goucima", "ime", "phrases", "pinyin", "suggestion"$/);
  assert.match(fails([fx('latex.db'), '--table', 'phrases; DROP TABLE ime']), /no table "phrases; DROP TABLE ime"/);
  assert.match(
    fails([fx('latex.db'), '--table', 'phrases', '--question-col', 'tabkeys', '--answer-col', 'answer']),
    /latex\.db: table "phrases": --answer-col: no column "answer"; the columns are 1:"id", 2:"tabkeys", 3:"phrase", 4:"freq", 5:"user_freq"$/,
  );
  assert.match(fails([fx('latex.db'), '--table', 'phrases']), /table "phrases": no question\/answer columns recognised among 1:"id", .*--question-col and --answer-col/);
  assert.match(fails([fx('latex.db')]), /latex\.db: name the table with --table \(tables: "goucima", .*\) or give --query$/);
  // The same for tables in text files.
  assert.match(fails([fx('faq.csv'), '--question-col', 'Title']), /faq\.csv: --question-col: no column "Title"; the columns are 1:"Question", 2:"Answer", 3:"Source"$/);
  assert.match(fails([fx('emoji-code-picto.csv'), '--no-header', '--answer-col', '3']), /--answer-col 3: there is no column 3; the first row has 2 columns/);
  assert.match(fails([fx('faq.tsv'), '--no-header', '--question-col', 'front']), /without a header, columns are chosen by number \(1 to 2\)/);
});

test('a query returning other than two columns, a broken query, and a query that writes', () => {
  assert.match(fails([fx('latex.db'), '--query', 'SELECT id, tabkeys, phrase FROM phrases']), /latex\.db: --query returns 3 columns \("id", "tabkeys", "phrase"\); it must return exactly two/);
  assert.match(fails([fx('latex.db'), '--query', 'SELECT phrase FROM phrases']), /--query returns 1 column \("phrase"\)/);
  assert.match(fails([fx('latex.db'), '--query', 'SELEKT a, b FROM phrases']), /latex\.db: --query: near "SELEKT": syntax error/);
  const before = sha256File(fx('latex.db'));
  assert.match(fails([fx('latex.db'), '--query', "DELETE FROM phrases RETURNING tabkeys, phrase"]), /--query: attempt to write a readonly database/);
  assert.equal(sha256File(fx('latex.db')), before, 'the database file is never written');
});

test('an output that exists is refused without --force, and kept as it was', () => {
  const [out, dir] = file('out.qa.txt', 'Q: mine?\nA: yes\n');
  assert.match(fails([fx('faq.csv')], { dir }), /out\.qa\.txt already exists; choose another output or pass --force/);
  assert.equal(fs.readFileSync(out, 'utf8'), 'Q: mine?\nA: yes\n');
});

test('a failure after writing began leaves the old output untouched (also with --append and --force)', () => {
  const lines = fs.readFileSync(fx('question-answer.jsonl'), 'utf8');
  const [input, dir] = file('late.jsonl', `${lines}{"question": "broken"\n`);
  const out = path.join(dir, 'out.qa.txt');
  fs.writeFileSync(out, 'Q: mine?\nA: yes\n');
  assert.match(fails([input, '--append'], { dir }), /late\.jsonl:11: invalid JSON/);
  assert.match(fails([input, '--force'], { dir }), /late\.jsonl:11: invalid JSON/);
  assert.equal(fs.readFileSync(out, 'utf8'), 'Q: mine?\nA: yes\n');
});

test('an unclosed quote in a CSV names the line it opens on', () => {
  const [csv, dir] = file('open.csv', 'question,answer\nWhy?,"Because\nthat is how\n');
  assert.match(fails([csv], { dir }), /open\.csv:2: a quoted field that starts in this record is never closed/);
});

test('a format that cannot be told from the name; contradictory flags exit 2', () => {
  const [unknown, dir] = file('pairs.dat', 'question,answer\nq,a\n');
  assert.match(fails([unknown], { dir }), /pairs\.dat: cannot tell the input format from its name; pass --format \(csv, tsv, json, jsonl, sqlite\)/);
  assert.match(fails([fx('faq.csv'), '--table', 'x'], { status: 2 }), /--table and --query are for SQLite input/);
  assert.match(fails([fx('faq.csv'), '--min-answer-words', '10', '--max-answer-words', '5'], { status: 2 }), /--min-answer-words 10 is above --max-answer-words 5/);
});
