/**
 * What a data file becomes before anything trains: the pair count, the first pairs as the model will see
 * them (pairText), the skipped rows with where they are and why, and the distribution of pair lengths in
 * words (the tokenizer does not exist yet). A table, JSON or SQLite file is converted for real by
 * convertFile, to a temporary file removed afterwards, so the preview says exactly what gptmed-convert
 * would; Q&A text is parsed as gptmed-tokenize reads it. Memory stays bounded: only counts per length
 * and the first few pairs and skipped rows are kept.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convertFile, type ConvertOptions, type InputFormat } from '../convert/convert.js';
import { pairText } from '../convert/pair-text.js';
import { readQaFile, type QaPair } from '../convert/qa-format.js';

export interface PreviewLimits {
  /** Pairs shown (default 10). */
  pairs: number;
  /** Skipped rows listed (default 50; all of them are counted). */
  skippedRows: number;
}

export interface LengthDistribution {
  unit: 'words';
  min: number;
  p50: number;
  p90: number;
  max: number;
  /** Pairs by length: [from, to] inclusive, in order; empty when there are no pairs. */
  histogram: { from: number; to: number; count: number }[];
}

export interface DatasetPreview {
  /** The converter's input format, or 'qa' for Q&A text (which needs no conversion). */
  format: InputFormat | 'qa';
  rowsRead: number;
  pairs: number;
  /** Skipped rows and pairs, by reason. */
  skipped: Record<string, number>;
  skippedRows: { at: string; reason: string }[];
  firstPairs: { question: string; answer: string; text: string }[];
  lengths: LengthDistribution;
}

export type PreviewOptions = Omit<ConvertOptions, 'output' | 'append' | 'force' | 'quiet' | 'observer'> & {
  /** The input is Q&A text already (gptmed-serve's jobs skip conversion for it). */
  qaText?: boolean;
};

const HISTOGRAM_BINS = 12;

/** Collects what the preview shows as pairs and skips arrive. */
class PreviewCollector {
  readonly skipped: Record<string, number> = {};
  readonly skippedRows: { at: string; reason: string }[] = [];
  readonly firstPairs: DatasetPreview['firstPairs'] = [];
  /** Pairs by length in words. */
  private readonly byLength = new Map<number, number>();
  pairs = 0;

  constructor(private readonly limits: PreviewLimits) {}

  pair(p: QaPair): void {
    this.pairs++;
    const text = pairText(p);
    if (this.firstPairs.length < this.limits.pairs) this.firstPairs.push({ question: p.question, answer: p.answer, text });
    const words = text.match(/\S+/g)?.length ?? 0;
    this.byLength.set(words, (this.byLength.get(words) ?? 0) + 1);
  }

  skip(reason: string, at: string): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
    if (this.skippedRows.length < this.limits.skippedRows) this.skippedRows.push({ at, reason });
  }

  lengths(): LengthDistribution {
    const sorted = [...this.byLength.entries()].sort((a, b) => a[0] - b[0]);
    if (sorted.length === 0) return { unit: 'words', min: 0, p50: 0, p90: 0, max: 0, histogram: [] };
    const quantile = (q: number): number => {
      let seen = 0;
      for (const [len, n] of sorted) if ((seen += n) >= q * this.pairs) return len;
      return sorted[sorted.length - 1][0];
    };
    const min = sorted[0][0];
    const max = sorted[sorted.length - 1][0];
    const width = Math.max(1, Math.ceil((max - min + 1) / HISTOGRAM_BINS));
    const histogram: LengthDistribution['histogram'] = [];
    for (let from = min; from <= max; from += width) histogram.push({ from, to: from + width - 1, count: 0 });
    for (const [len, n] of sorted) histogram[Math.floor((len - min) / width)].count += n;
    return { unit: 'words', min, p50: quantile(0.5), p90: quantile(0.9), max, histogram };
  }
}

async function previewQaText(o: PreviewOptions, c: PreviewCollector): Promise<number> {
  let blocks = 0;
  const onMalformed = (m: { line: number; reason: string }): void => {
    blocks++;
    c.skip(m.reason, `line ${m.line}`);
  };
  for await (const pair of readQaFile(o.input, { onMalformed })) {
    blocks++;
    c.pair(pair);
  }
  return blocks;
}

/** Convert (or parse) `o.input` and describe the result; throws the converter's UserError when it fails. */
export async function previewDataset(o: PreviewOptions, limits: PreviewLimits = { pairs: 10, skippedRows: 50 }): Promise<DatasetPreview> {
  const c = new PreviewCollector(limits);
  let format: DatasetPreview['format'] = 'qa';
  let rowsRead: number;
  if (o.qaText) {
    rowsRead = await previewQaText(o, c);
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gptmed-preview-'));
    try {
      const summary = await convertFile({ ...o, output: path.join(dir, 'data.qa.txt'), quiet: true, observer: c });
      format = summary.format;
      rowsRead = summary.rowsRead;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return { format, rowsRead, pairs: c.pairs, skipped: c.skipped, skippedRows: c.skippedRows, firstPairs: c.firstPairs, lengths: c.lengths() };
}
