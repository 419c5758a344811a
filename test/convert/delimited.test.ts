import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DelimitedParser, parseDelimited, type DelimitedRecord } from '../../src/convert/delimited.js';
import { stripHtml } from '../../src/convert/html.js';
import { UserError } from '../../src/common/errors.js';
import { fixturesDir } from '../helpers.js';

const fields = (recs: DelimitedRecord[]) => recs.map((r) => r.fields);

test('RFC 4180: quoted delimiters, doubled quotes, embedded newlines, empty fields', () => {
  const text = 'a,b,c\r\n"x, y","say ""hi""","line 1\r\nline 2"\r\n,"",last\r\n';
  assert.deepEqual(fields(parseDelimited(text, ',')), [
    ['a', 'b', 'c'],
    ['x, y', 'say "hi"', 'line 1\r\nline 2'],
    ['', '', 'last'],
  ]);
});

test('records know the line they start on, across quoted newlines; blank lines are skipped', () => {
  const recs = parseDelimited('h1,h2\n"multi\nline\nfield",x\n\nnext,y', ',');
  assert.deepEqual(recs.map((r) => r.line), [1, 2, 6]);
  assert.deepEqual(recs[2].fields, ['next', 'y']);
});

test('a BOM is dropped, a quote inside an unquoted field is kept, tabs split TSV', () => {
  assert.deepEqual(fields(parseDelimited('\uFEFFq\ta\n5" disk\t"tab\there"\n', '\t')), [
    ['q', 'a'],
    ['5" disk', 'tab\there'],
  ]);
});

test('chunk boundaries anywhere give the same records (fed one character at a time)', () => {
  const text = fs.readFileSync(path.join(fixturesDir, 'convert', 'faq.csv'), 'utf8');
  const whole = parseDelimited(text, ',');
  const parser = new DelimitedParser({ delimiter: ',', source: 'faq.csv' });
  const pieces: DelimitedRecord[] = [];
  for (const ch of text) pieces.push(...parser.push(ch));
  pieces.push(...parser.end());
  assert.deepEqual(pieces, whole);
  assert.equal(whole.length, 13);
  assert.ok(whole.slice(1).every((r) => r.fields.length === 3 && r.fields[2] === 'Python FAQ'));
});

test('a CR at the end of one chunk and LF at the start of the next end one record, not two', () => {
  const parser = new DelimitedParser({ delimiter: ',', source: 's' });
  const recs = [...parser.push('a,b\r'), ...parser.push('\nc,d\r'), ...parser.push('\n'), ...parser.end()];
  assert.deepEqual(recs, [
    { fields: ['a', 'b'], line: 1 },
    { fields: ['c', 'd'], line: 2 },
  ]);
});

test('a quoted field that is never closed is an error naming the line it opens on', () => {
  assert.throws(
    () => parseDelimited('q,a\nfine,yes\n"open,no\nmore text\n', ',', 'bad.csv'),
    (err: unknown) => err instanceof UserError && /^bad\.csv:3: a quoted field .* never closed/.test(err.message),
  );
});

test('HTML from Anki fields: line breaks, blocks, tags and entities', () => {
  assert.equal(stripHtml('<div><b>x &lt; y</b></div>line<br>two<br />&amp;&nbsp;&#233;&#x263A;'), 'x < y\nline\ntwo\n& \u00e9\u263a');
  assert.equal(stripHtml('keep &unknown; as is'), 'keep &unknown; as is');
  // Every HTML5 entity, not a hand-picked few: &eacute; once passed through as written.
  assert.equal(stripHtml('caf&eacute; caf&#233; caf&#xE9; caf&#XE9;&nbsp;&Eacute;&euro;&hearts;&rarr;&frac12;'), 'caf\u00e9 caf\u00e9 caf\u00e9 caf\u00e9 \u00c9\u20ac\u2665\u2192\u00bd');
  assert.equal(stripHtml('&lt;b&gt; &amp;amp; &quot;q&quot; &apos;a&apos; &mdash;&hellip;'), '<b> &amp; "q" \'a\' \u2014\u2026');
});
