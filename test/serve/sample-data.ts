/** Upload data for the job and page tests: the first pairs of the bundled sample, data/sample.qa.txt. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseQa } from '../../src/convert/qa-format.js';
import { repoRoot } from '../helpers.js';

export type Pair = [question: string, answer: string];

export function samplePairs(count: number): Pair[] {
  const { pairs } = parseQa(fs.readFileSync(path.join(repoRoot, 'data', 'sample.qa.txt'), 'utf8'));
  return pairs.slice(0, count).map((p) => [p.question, p.answer]);
}

const csvField = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** CSV rows (no header) of question,answer. */
export function csvRows(pairs: Pair[]): string[] {
  return pairs.map((p) => p.map(csvField).join(','));
}

export const csvText = (rows: string[]): string => `question,answer\n${rows.join('\n')}\n`;

export const qaText = (pairs: Pair[]): string => `${pairs.map(([q, a]) => `Q: ${q}\nA: ${a}`).join('\n\n')}\n`;
