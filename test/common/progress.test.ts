import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, Progress } from '../../src/common/progress.js';

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const stream = { isTTY: false, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}

test('without a terminal, progress is plain lines with percent, rate and the given fields', () => {
  const c = capture();
  const p = new Progress({ label: 'convert', total: 200, unit: 'rows', stream: c.stream, plainIntervalMs: 0 });
  p.update(50, { skipped: 3 });
  p.finish();
  const lines = c.text().trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^convert  25%  \S+ rows\/s  skipped 3  ETA \d+:\d\d$/);
  assert.doesNotMatch(c.text(), /\r|\x1b/);
});

test('quiet progress prints nothing', () => {
  const c = capture();
  const p = new Progress({ label: 'x', total: 10, stream: c.stream, quiet: true, plainIntervalMs: 0 });
  p.update(5);
  p.finish();
  assert.equal(c.text(), '');
});

test('durations read as m:ss or h:mm:ss', () => {
  assert.equal(formatDuration(5), '0:05');
  assert.equal(formatDuration(3725), '1:02:05');
  assert.equal(formatDuration(Number.NaN), '--:--');
});
