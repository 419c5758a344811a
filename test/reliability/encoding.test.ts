/**
 * Text that is not UTF-8 is refused where it is read, with the file, line and
 * byte offset, never turned into U+FFFD quietly (issue 10, item 7).
 * gptmed-convert also reads Latin-1 and UTF-16 when told, or by the byte
 * order mark.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../src/common/errors.js';
import { readQaFile } from '../../src/convert/qa-format.js';
import { checkPromptText, readQuestionFile } from '../../src/generate/questions.js';
import { fixturesDir, runCli, tempDir } from '../helpers.js';

/** A file in a fresh directory holding the pieces (text as UTF-8, bytes as they are); returns [file, dir]. */
function file(name: string, ...pieces: Array<string | Uint8Array>): [string, string] {
  const dir = tempDir();
  const f = path.join(dir, name);
  fs.writeFileSync(f, Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))));
  return [f, dir];
}

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');

/** gptmed-convert on `input`: exit status, the stderr lines, and the output text when there is one. */
function convert(input: string, dir: string, ...flags: string[]): { status: number | null; lines: string[]; output?: string } {
  const out = path.join(dir, 'out.qa.txt');
  const r = runCli('convert', ['--quiet', input, '-o', out, ...flags]);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/);
  return { status: r.status, lines: r.stderr.trim().split('\n'), output: fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : undefined };
}

test('convert: a Latin-1 CSV is refused at its first bad byte, and read as Latin-1 with --encoding latin1', () => {
  // 'question,answer\n' is 16 bytes, 'What?,ok\n' 9 more, 'Quel caf' 8 more: the é is byte 33, on line 3.
  const [csv, dir] = file('data.csv', latin1('question,answer\nWhat?,ok\nQuel café?,Un café crème\n'));
  const refused = convert(csv, dir);
  assert.equal(refused.status, 1);
  assert.deepEqual(refused.lines, [`gptmed-convert: error: ${csv}:3: invalid UTF-8 at byte 33; convert the file to UTF-8 or pass --encoding latin1`]);
  assert.equal(refused.output, undefined, 'nothing is written');
  assert.deepEqual(fs.readdirSync(dir), ['data.csv'], 'no temporary is left');

  const read = convert(csv, dir, '--encoding', 'latin1');
  assert.equal(read.status, 0, read.lines.join('\n'));
  assert.equal(read.output, 'Q: What?\nA: ok\n\nQ: Quel café?\nA: Un café crème\n\n');
});

test('convert: invalid UTF-8 in TSV, an Anki export, JSON and JSONL names the line and byte', () => {
  const cases: Array<[string, Array<string | Uint8Array>, number, number]> = [
    ['deck.tsv', ['question\tanswer\nGr', latin1('ü'), 'n?\tyes\n'], 2, 18],
    // The Anki header lines count as lines and bytes too.
    ['deck.txt', ['#separator:tab\n#html:false\nFront\t', latin1('Bé'), '\n'], 3, 34],
    ['data.json', ['[\n  {"question": "a?", "answer": "b"},\n  {"question": "', new Uint8Array([0xc3, 0x28]), '", "answer": "d"}\n]\n'], 3, 55],
    // A truncated four-byte sequence.
    ['data.jsonl', ['{"question": "a?", "answer": "b"}\n{"question": "c?", "answer": "', new Uint8Array([0xf0, 0x9f, 0x98]), '"}\n'], 2, 64],
  ];
  for (const [name, pieces, line, byte] of cases) {
    const [f, dir] = file(name, ...pieces);
    const r = convert(f, dir);
    assert.equal(r.status, 1, name);
    assert.deepEqual(r.lines, [`gptmed-convert: error: ${f}:${line}: invalid UTF-8 at byte ${byte}; convert the file to UTF-8 or pass --encoding latin1`], name);
    assert.deepEqual(fs.readdirSync(dir), [name]);
  }
});

test('convert: Latin-1 JSONL and Anki exports with --encoding latin1', () => {
  const [jsonl, dir] = file('data.jsonl', latin1('{"question": "Où?", "answer": "Là."}\n'));
  assert.equal(convert(jsonl, dir, '--encoding', 'latin1').output, 'Q: Où?\nA: Là.\n\n');
  const [anki, dir2] = file('deck.txt', latin1('#separator:tab\n#deck:Übungen\nGrüße?\tHallo\n'));
  assert.equal(convert(anki, dir2, '--encoding', 'latin1').output, 'Q: Grüße?\nA: Hallo\n\n');
});

test('convert: UTF-16 with a byte order mark (LE or BE) is read without a flag; without one, with --encoding utf16', () => {
  const text = 'question\tanswer\nCafé?\tOui 😀\n';
  const le = Buffer.from(text, 'utf16le');
  const be = Buffer.from(le).swap16();
  for (const [name, bytes] of [
    ['le.tsv', Buffer.concat([Buffer.from([0xff, 0xfe]), le])],
    ['be.tsv', Buffer.concat([Buffer.from([0xfe, 0xff]), be])],
  ] as const) {
    const [f, dir] = file(name, bytes);
    const r = convert(f, dir);
    assert.equal(r.status, 0, `${name}: ${r.lines.join('\n')}`);
    assert.equal(r.output, 'Q: Café?\nA: Oui 😀\n\n', name);
  }
  const [bare, dir] = file('bare.jsonl', Buffer.from('{"question": "Où?", "answer": "Là."}\n', 'utf16le'));
  assert.match(convert(bare, dir).lines[0], /looks like a binary file, not jsonl text; .*--encoding utf16/);
  assert.equal(convert(bare, dir, '--encoding', 'utf16').output, 'Q: Où?\nA: Là.\n\n');
});

test('convert: a UTF-8 byte order mark is skipped; broken UTF-16 is refused with its line and byte', () => {
  const [bom, dir] = file('bom.csv', new Uint8Array([0xef, 0xbb, 0xbf]), 'question,answer\nÉté?,Oui\n');
  assert.equal(convert(bom, dir).output, 'Q: Été?\nA: Oui\n\n');
  // BOM (2 bytes) + 'q\ta\nx\ty\n' (16 bytes): the lone high surrogate is byte 18, line 3.
  const [bad, dir2] = file('bad.tsv', new Uint8Array([0xff, 0xfe]), Buffer.from('q\ta\nx\ty\n', 'utf16le'), new Uint8Array([0x00, 0xd8]), Buffer.from('z\tw\n', 'utf16le'));
  const r = convert(bad, dir2);
  assert.equal(r.status, 1);
  assert.ok(r.lines[0].startsWith(`gptmed-convert: error: ${bad}:3: invalid UTF-16 at byte 18 `), r.lines[0]);
  assert.equal(r.lines.length, 1);
});

test('convert: --encoding is for text input, and takes only utf8, latin1 or utf16', () => {
  const [csv, dir] = file('a.csv', 'question,answer\nq?,a\n');
  const bad = convert(csv, dir, '--encoding', 'cp1252');
  assert.equal(bad.status, 2);
  assert.match(bad.lines.join('\n'), /encoding/);
  const sqlite = convert(path.join(fixturesDir, 'convert', 'latex.db'), dir, '--encoding', 'latin1');
  assert.equal(sqlite.status, 2);
  assert.deepEqual(sqlite.lines, [`gptmed-convert: error: --encoding is for text input; ${path.join(fixturesDir, 'convert', 'latex.db')} is read as sqlite`]);
});

/** The pairs of a Q&A file, or the error line it gives. */
async function readQa(f: string): Promise<string> {
  try {
    let n = 0;
    for await (const _ of readQaFile(f)) n++;
    return `${n} pairs`;
  } catch (err) {
    assert.ok(err instanceof UserError, String(err));
    return err.message;
  }
}

test('readQaFile (tokenizer, tokenize, evaluate): invalid UTF-8 is refused with its line and byte, also past the first 1 MB read', async () => {
  const [small] = file('small.qa.txt', 'Q: Café?\nA: Oui\n\nQ: Th', latin1('é'), '?\nA: Non\n');
  assert.equal(await readQa(small), `${small}:4: invalid UTF-8 at byte 23; convert the file to UTF-8`);
  // 30000 pairs of 63 bytes each (with multi-byte characters) before the bad byte: about 1.9 MB, two reads.
  const pair = 'Q: Où est la gare numéro 0000?\nA: Là-bas, après le café.\n\n';
  const good = Array.from({ length: 30000 }, (_, i) => pair.replace('0000', String(i).padStart(4, '0'))).join('');
  const [large] = file('large.qa.txt', good, 'Q: x\nA: ', new Uint8Array([0x80]), '\n');
  const offset = Buffer.byteLength(good) + 'Q: x\nA: '.length;
  assert.ok(offset > 1 << 20);
  assert.equal(await readQa(large), `${large}:${30000 * 3 + 2}: invalid UTF-8 at byte ${offset}; convert the file to UTF-8`);
  const [clean] = file('clean.qa.txt', good);
  assert.equal(await readQa(clean), '30000 pairs');
});

test('gptmed-train-tokenizer refuses a Q&A file that is not UTF-8 in one line', () => {
  const [qa, dir] = file('data.qa.txt', 'Q: Café?\nA: Oui\n\nQ: Th', latin1('é'), '?\nA: Non\n\n');
  const r = runCli('train-tokenizer', ['--input', qa, '--output-prefix', path.join(dir, 'tok'), '--vocab-size', '300']);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim(), `gptmed-train-tokenizer: error: ${qa}:4: invalid UTF-8 at byte 23; convert the file to UTF-8`);
  assert.deepEqual(fs.readdirSync(dir), ['data.qa.txt']);
});

test('generate: a question file that is not UTF-8 is refused; a prompt holding U+FFFD is a usage error', () => {
  const [questions] = file('questions.txt', 'Why?\nWhat is a caf', latin1('é'), '?\n');
  assert.throws(() => readQuestionFile(questions), { name: 'UserError', message: `${questions}:2: invalid UTF-8 at byte 18; convert the file to UTF-8` });
  const [ok] = file('ok.txt', 'Why?\nWhat is a café?\n');
  assert.deepEqual(readQuestionFile(ok).questions, [{ question: 'Why?' }, { question: 'What is a café?' }]);

  // What Node makes of the argument bytes 'caf\xe9': the é became U+FFFD.
  const prompt = Buffer.from('What is a caf\xe9?', 'latin1').toString('utf8');
  assert.throws(() => checkPromptText(prompt), (err: unknown) => err instanceof UserError && err.exitCode === 2 && /^--prompt: .*not UTF-8.*pass the question in UTF-8/.test(err.message));
  assert.doesNotThrow(() => checkPromptText('What is a café?'));
});
