/**
 * Memory and speed of gptmed-convert on large streamed inputs. A CSV and a
 * JSONL of about --size-mb each are generated in a temporary directory from
 * the bundled sample's real pairs (numbered so none repeat; multi-line
 * answers, quotes and commas included), then converted by the built CLI.
 * Printed: peak RSS and its ratio to the 300 MB target, and the time against
 * a plain streamed read of the same file measured in the same run.
 *   scripts/bench-convert [--size-mb 1024] [--formats csv,jsonl]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { parseQa, type QaPair } from '../src/convert/qa-format.js';
import { measure } from './bench-measure.js';

const TARGET_MB = 300;

const args = yargs(hideBin(process.argv))
  .option('size-mb', { type: 'number', default: 1024, describe: 'size of each generated input, MB' })
  .option('formats', { type: 'string', default: 'csv,jsonl', describe: 'which inputs to generate and convert' })
  .strict()
  .parseSync();

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const pairs = parseQa(fs.readFileSync(path.join(root, 'data', 'sample.qa.txt'), 'utf8')).pairs;

const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const writers: Record<string, { header: string; line: (p: QaPair) => string }> = {
  csv: { header: 'question,answer\r\n', line: (p) => `${csvField(p.question)},${csvField(p.answer)}\r\n` },
  jsonl: { header: '', line: (p) => `${JSON.stringify(p)}\n` },
};

/** Writes about `bytes` of input; returns the number of rows. */
function generate(file: string, format: string, bytes: number): number {
  const w = writers[format];
  const fd = fs.openSync(file, 'w');
  let size = 0;
  let rows = 0;
  let buf: string[] = [w.header];
  let pending = w.header.length;
  try {
    while (size + pending < bytes) {
      const p = pairs[rows % pairs.length];
      const line = w.line({ question: `${p.question} (#${rows})`, answer: p.answer });
      buf.push(line);
      pending += line.length;
      rows++;
      if (pending > 8 << 20) {
        size += fs.writeSync(fd, buf.join(''));
        buf = [];
        pending = 0;
      }
    }
    fs.writeSync(fd, buf.join(''));
  } finally {
    fs.closeSync(fd);
  }
  return rows;
}

const readAll = `const s=require('fs').createReadStream(process.argv[1],{highWaterMark:1<<20,encoding:'utf8'});let n=0;s.on('data',c=>{n+=c.length});`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gptmed-bench-convert-'));
try {
  for (const format of args.formats.split(',')) {
    if (!writers[format]) throw new Error(`unknown format ${format}; use csv or jsonl`);
    const input = path.join(dir, `big.${format}`);
    const rows = generate(input, format, args.sizeMb * 1e6);
    const mb = fs.statSync(input).size / 1e6;
    const reference = await measure(process.execPath, ['-e', readAll, input]);
    const run = await measure(process.execPath, [path.join(root, 'bin', 'gptmed-convert.js'), input, '-o', path.join(dir, 'out.qa.txt'), '--quiet', '--force']);
    const peakMB = (run.peakMiB * 1048576) / 1e6;
    console.log(
      `${format}: ${mb.toFixed(0)} MB, ${rows} rows: converted in ${run.seconds.toFixed(1)} s (${(mb / run.seconds).toFixed(1)} MB/s), ` +
        `peak RSS ${peakMB.toFixed(0)} MB = ${(peakMB / TARGET_MB).toFixed(2)} x the ${TARGET_MB} MB target ` +
        `(${peakMB < TARGET_MB ? 'within' : 'OVER'}); a plain streamed read of the file: ${reference.seconds.toFixed(1)} s, ` +
        `${((reference.peakMiB * 1048576) / 1e6).toFixed(0)} MB peak; time ratio ${(run.seconds / reference.seconds).toFixed(1)}`,
    );
    fs.rmSync(input);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
