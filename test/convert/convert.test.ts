/**
 * gptmed-convert end to end on real files: each format and schema, the
 * options, and the guarantees on the output. Build first (`npm run build`).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import initSqlJs from 'sql.js';
import { parseQa, type QaPair } from '../../src/convert/qa-format.js';
import { fixturesDir, repoRoot, runCli, tempDir, type CliResult } from '../helpers.js';

const fx = (name: string) => path.join(fixturesDir, 'convert', name);

/** The bundled sample holds the real pairs the fixtures were made from: quiz, then Debian FAQ, then Python FAQ. */
const sample = parseQa(fs.readFileSync(path.join(repoRoot, 'data', 'sample.qa.txt'), 'utf8')).pairs;
const quiz = sample.slice(0, 1401);
const debianFaq = sample.slice(1401, 1548);
const pythonFaq = sample.slice(1548);

function convert(args: string[]): CliResult {
  return runCli('convert', ['--quiet', ...args]);
}

function ok(r: CliResult): void {
  assert.equal(r.status, 0, r.stderr);
}

/** The output parses back with no malformed block. */
function readPairs(file: string): QaPair[] {
  const { pairs, malformed } = parseQa(fs.readFileSync(file, 'utf8'), { strict: true, source: file });
  assert.deepEqual(malformed, []);
  return pairs;
}

function summaryOf(r: CliResult): string {
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1];
}

test('the fixtures line up with the bundled sample they were made from', () => {
  assert.equal(pythonFaq.length, 178);
  assert.equal(debianFaq.length, 147);
  assert.match(pythonFaq[0].question, /^Why does Python use indentation/);
  assert.equal(debianFaq[0].question, 'What is this FAQ?');
});

test('emoji CSV without a header, columns by number, both ways round; empty cells are counted', () => {
  const dir = tempDir();
  const out = path.join(dir, 'emoji.qa.txt');
  const r = convert([fx('emoji-code-picto.csv'), '--no-header', '-o', out]);
  ok(r);
  const pairs = readPairs(out);
  assert.equal(pairs.length, 4005);
  assert.deepEqual(pairs[0], { question: ':grinning:', answer: '😀' });
  assert.equal(summaryOf(r), `gptmed-convert: 4007 rows read (csv), 4005 pairs written to ${out}; skipped: 2 empty answer`);

  const rev = path.join(dir, 'reverse.qa.txt');
  ok(convert([fx('emoji-code-picto.csv'), '--no-header', '--question-col', '2', '--answer-col', '1', '-o', rev]));
  const reversed = readPairs(rev);
  assert.equal(reversed.length, 4005);
  assert.deepEqual(reversed[1], { question: '😃', answer: ':smiley:' });
});

test('CSV (RFC 4180, CRLF, quoted multi-line fields) and TSV with headers convert field for field', () => {
  const dir = tempDir();
  ok(convert([fx('faq.csv'), '-o', path.join(dir, 'csv.qa.txt')]));
  assert.deepEqual(readPairs(path.join(dir, 'csv.qa.txt')), pythonFaq.slice(0, 12));
  ok(convert([fx('faq.tsv'), '-o', path.join(dir, 'tsv.qa.txt')]));
  assert.deepEqual(readPairs(path.join(dir, 'tsv.qa.txt')), debianFaq.slice(0, 10));
  // Columns named by flag, by header name and by number.
  ok(convert([fx('faq.csv'), '--question-col', 'Source', '--answer-col', '1', '-o', path.join(dir, 'named.qa.txt')]));
  const named = readPairs(path.join(dir, 'named.qa.txt'));
  assert.deepEqual(named[3], { question: 'Python FAQ', answer: pythonFaq[3].question });
});

test("Anki 'Notes in Plain Text': header lines read, metadata columns passed over, HTML stripped", () => {
  const dir = tempDir();
  const out = path.join(dir, 'anki.qa.txt');
  const r = convert([fx('anki-notes.txt'), '-o', out]);
  ok(r);
  assert.match(summaryOf(r), /6 rows read \(tsv\), 6 pairs written/);
  assert.deepEqual(readPairs(out), pythonFaq.slice(0, 6));
  // An older export without header lines: say it is TSV, has no header, and holds HTML.
  const legacy = path.join(dir, 'legacy.qa.txt');
  ok(convert([fx('anki-legacy.txt'), '--format', 'tsv', '--no-header', '--strip-html', '-o', legacy]));
  assert.deepEqual(readPairs(legacy), quiz.slice(600, 608));
});

test('JSON and JSONL: every schema users bring', () => {
  const dir = tempDir();
  const cases: Array<[string, QaPair[]]> = [
    ['question-answer.json', pythonFaq.slice(0, 12)],
    ['prompt-completion-wrapped.json', debianFaq.slice(0, 10)],
    ['question-answer.jsonl', debianFaq.slice(0, 10)],
    ['instruction-response.jsonl', pythonFaq.slice(0, 12)],
    ['prompt-completion.jsonl', quiz.slice(600, 612)],
  ];
  for (const [name, expected] of cases) {
    const out = path.join(dir, `${name}.qa.txt`);
    ok(convert([fx(name), '-o', out]));
    assert.deepEqual(readPairs(out), expected, name);
  }
});

test('Alpaca: a non-empty input is appended to the question on its own line', () => {
  const dir = tempDir();
  const out = path.join(dir, 'alpaca.qa.txt');
  ok(convert([fx('alpaca.json'), '-o', out]));
  const records = JSON.parse(fs.readFileSync(fx('alpaca.json'), 'utf8')) as Array<{ instruction: string; input: string; output: string }>;
  const pairs = readPairs(out);
  assert.equal(pairs.length, records.length);
  assert.deepEqual(pairs[0], { question: `${records[0].instruction}\n${records[0].input}`, answer: records[0].output });
  assert.deepEqual(pairs[1], { question: records[1].instruction, answer: records[1].output });
  assert.deepEqual(pairs.map((p) => p.answer), quiz.slice(600, 612).map((p) => p.answer));
});

test('chat: one pair per user turn answered by the assistant; system turns and unanswered turns counted', () => {
  const dir = tempDir();
  const out = path.join(dir, 'chat.qa.txt');
  const r = convert([fx('chat.jsonl'), '-o', out]);
  ok(r);
  assert.deepEqual(readPairs(out), debianFaq.slice(0, 9));
  assert.match(summaryOf(r), /4 rows read \(jsonl\), 9 pairs written .*skipped: 3 system turn, 1 user turn without an assistant reply$/);
});

test('SQLite: a table with named columns, a --query, and the only table found by itself', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'latex.qa.txt');
  const r = convert([fx('latex.db'), '--table', 'phrases', '--question-col', 'tabkeys', '--answer-col', 'phrase', '-o', out]);
  ok(r);
  const pairs = readPairs(out);
  assert.equal(pairs.length, 785);
  assert.ok(pairs.some((p) => p.question === '\\alpha' && p.answer === 'α'));
  assert.match(summaryOf(r), /785 rows read \(sqlite\), 785 pairs written/);

  const q = path.join(dir, 'query.qa.txt');
  ok(convert([fx('latex.db'), '--query', "SELECT attr, val FROM ime WHERE attr IN ('name', 'license') ORDER BY attr", '-o', q]));
  assert.deepEqual(readPairs(q), [
    { question: 'license', answer: 'LGPL-2.1-or-later' },
    { question: 'name', answer: 'LaTeX' },
  ]);

  // Odd names are quoted identifiers, never pasted into SQL; a database with one table needs no --table.
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  db.run('CREATE TABLE "my ""odd"" table" ("the question" TEXT, "answer" TEXT, n INTEGER)');
  db.run('INSERT INTO "my ""odd"" table" VALUES (?, ?, ?), (?, ?, ?)', ['What is 6 x 7?', '42', 1, 'Blob?', null, 2]);
  const made = path.join(dir, 'odd.sqlite');
  fs.writeFileSync(made, db.export());
  db.close();
  const odd = path.join(dir, 'odd.qa.txt');
  const r2 = convert([made, '--question-col', 'the question', '--answer-col', 'n', '-o', odd]);
  ok(r2);
  assert.deepEqual(readPairs(odd), [
    { question: 'What is 6 x 7?', answer: '1' },
    { question: 'Blob?', answer: '2' },
  ]);
});

test('--dedupe, --min-answer-words and --max-answer-words drop pairs and count them by reason', () => {
  const dir = tempDir();
  const twice = path.join(dir, 'twice.jsonl');
  const lines = fs.readFileSync(fx('question-answer.jsonl'), 'utf8');
  fs.writeFileSync(twice, lines + lines);
  const out = path.join(dir, 'dedupe.qa.txt');
  const r = convert([twice, '--dedupe', '-o', out]);
  ok(r);
  assert.deepEqual(readPairs(out), debianFaq.slice(0, 10));
  assert.match(summaryOf(r), /20 rows read \(jsonl\), 10 pairs written .*skipped: 10 duplicate$/);

  const words = (p: QaPair) => p.answer.split(/\s+/).filter(Boolean).length;
  const filtered = path.join(dir, 'filtered.qa.txt');
  const r2 = convert([fx('faq.csv'), '--min-answer-words', '60', '--max-answer-words', '200', '-o', filtered]);
  ok(r2);
  const kept = pythonFaq.slice(0, 12).filter((p) => words(p) >= 60 && words(p) <= 200);
  const under = pythonFaq.slice(0, 12).filter((p) => words(p) < 60).length;
  const over = pythonFaq.slice(0, 12).filter((p) => words(p) > 200).length;
  assert.ok(kept.length > 0 && under > 0 && over > 0, 'the fixture exercises both limits');
  assert.deepEqual(readPairs(filtered), kept);
  assert.match(summaryOf(r2), new RegExp(`${under} answer under 60 words`));
  assert.match(summaryOf(r2), new RegExp(`${over} answer over 200 words`));
});

test('--shuffle: same seed, same order; another seed, another order; same pairs', () => {
  const dir = tempDir();
  const run = (seed: string, name: string) => {
    const out = path.join(dir, name);
    ok(convert([fx('emoji-code-picto.csv'), '--no-header', '--shuffle', '--seed', seed, '-o', out]));
    return fs.readFileSync(out, 'utf8');
  };
  const a = run('7', 'a.qa.txt');
  const b = run('7', 'b.qa.txt');
  const c = run('8', 'c.qa.txt');
  assert.equal(a, b);
  assert.notEqual(a, c);
  ok(convert([fx('emoji-code-picto.csv'), '--no-header', '-o', path.join(dir, 'plain.qa.txt')]));
  const key = (p: QaPair) => `${p.question}\u0000${p.answer}`;
  const plain = readPairs(path.join(dir, 'plain.qa.txt'));
  const shuffled = readPairs(path.join(dir, 'a.qa.txt'));
  assert.notDeepEqual(shuffled, plain);
  assert.deepEqual(shuffled.map(key).sort(), plain.map(key).sort());
  assert.deepEqual(fs.readdirSync(dir).sort(), ['a.qa.txt', 'b.qa.txt', 'c.qa.txt', 'plain.qa.txt']);
});

test('--append adds to an existing output (even one without a final newline); --force replaces it', () => {
  const dir = tempDir();
  const out = path.join(dir, 'all.qa.txt');
  fs.writeFileSync(out, 'Q: Kept?\nA: Yes, kept.');
  ok(convert([fx('faq.tsv'), '--append', '-o', out]));
  ok(convert([fx('faq.csv'), '--append', '-o', out]));
  assert.deepEqual(readPairs(out), [{ question: 'Kept?', answer: 'Yes, kept.' }, ...debianFaq.slice(0, 10), ...pythonFaq.slice(0, 12)]);
  ok(convert([fx('faq.tsv'), '--force', '-o', out]));
  assert.deepEqual(readPairs(out), debianFaq.slice(0, 10));
  assert.deepEqual(fs.readdirSync(dir), ['all.qa.txt']);
});

test('progress goes to stderr, the summary to stdout; the umbrella command runs convert too', () => {
  const dir = tempDir();
  const out = path.join(dir, 'p.qa.txt');
  const r = runCli('gptmed', ['convert', fx('faq.tsv'), '-o', out]);
  ok(r);
  assert.equal(r.stdout.trim().split('\n').length, 1, r.stdout);
  assert.match(r.stderr, /^convert faq\.tsv {2}100%/m);
  assert.match(summaryOf(r), /^gptmed-convert: 10 rows read \(tsv\), 10 pairs written to .*; skipped: none$/);
});
