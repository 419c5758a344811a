/**
 * gptmed-train-tokenizer: read the inputs (Q&A pairs or plain lines, mixed),
 * normalize as SentencePiece does, train BPE, write `<prefix>.model` (a
 * SentencePiece ModelProto) and `<prefix>.vocab` (`piece<TAB>score`).
 *
 * Plain text with default settings reproduces spm_train 0.1.97 exactly
 * (same settings recorded in the model, same pieces, same .vocab bytes).
 * Q&A mode changes what a Q&A model needs (MANUAL.md, section `tokenizer`);
 * it is on when any input is Q&A text, so one model serves pretraining on
 * plain text and fine-tuning on the pairs.
 */
import * as path from 'node:path';
import { commitFiles } from '../common/atomic.js';
import { checkOutput } from '../common/output.js';
import { UsageError, UserError } from '../common/errors.js';
import { checkTextFile, readTextFile } from '../common/input.js';
import { Progress } from '../common/progress.js';
import { pairText } from '../convert/pair-text.js';
import { readQaFile, startsWithQa, type MalformedBlock, type TextInputFormat } from '../convert/qa-format.js';
import { trainBpe, type BpeResult } from './bpe-trainer.js';
import { encodeModelProto, ModelType, nmtNfkcCharsmap, PieceType, type ModelPiece, type ModelProto, type NormalizerSpec, type TrainerSpec } from './model-proto.js';
import { Normalizer } from './normalizer.js';

export type Normalization = 'nmt_nfkc' | 'identity';

export interface TrainTokenizerOptions {
  /** One file or several; each is Q&A text or plain text (inputFormat). */
  input: string | readonly string[];
  outputPrefix: string;
  vocabSize: number;
  normalization?: Normalization;
  byteFallback?: boolean;
  /** Default 0.9995 for plain text (as spm_train), 1 for Q&A. */
  characterCoverage?: number;
  /** Longest sentence (plain text) or pair (Q&A) in bytes; longer ones are skipped and reported. */
  maxSentenceLength?: number;
  inputFormat?: TextInputFormat;
  force?: boolean;
  quiet?: boolean;
  /** Receives warnings (skipped text); default: stderr. */
  warn?: (message: string) => void;
}

export interface TrainTokenizerResult {
  modelPath: string;
  vocabPath: string;
  mode: 'qa' | 'text';
  vocabSize: number;
  alphabetSize: number;
  /** Sentences (lines and pairs) trained on. */
  sentences: number;
  /** Units read: Q&A pairs and plain-text lines (empty and skipped ones left out). */
  pairs: number;
  lines: number;
  skippedTooLong: number;
}

/** Q&A mode's special pieces, at fixed ids. */
export const QA_SPECIALS = { pad: 0, unk: 1, bos: 2, eos: 3 } as const;
/** Kept as one piece so newlines inside answers survive encoding. */
export const NEWLINE_SYMBOL = '\n';

const SPM_DEFAULT_MAX_SENTENCE_LENGTH = 4192;

/** The TrainerSpec spm_train 0.1.97 records for BPE, with our values filled in. */
function trainerSpecFor(o: {
  inputs: readonly string[];
  prefix: string;
  vocabSize: number;
  coverage: number;
  maxSentenceLength: number;
  byteFallback: boolean;
  qa: boolean;
}): TrainerSpec {
  const ids = o.qa ? { unkId: QA_SPECIALS.unk, bosId: QA_SPECIALS.bos, eosId: QA_SPECIALS.eos, padId: QA_SPECIALS.pad } : { unkId: 0, bosId: 1, eosId: 2, padId: -1 };
  return {
    input: [...o.inputs],
    modelPrefix: o.prefix,
    modelType: ModelType.BPE,
    vocabSize: o.vocabSize,
    selfTestSampleSize: 0,
    inputFormat: '',
    characterCoverage: o.coverage,
    inputSentenceSize: 0,
    seedSentencepieceSize: 1000000,
    shrinkingFactor: 0.75,
    numThreads: 16,
    numSubIterations: 2,
    maxSentenceLength: o.maxSentenceLength,
    shuffleInputSentence: true,
    maxSentencepieceLength: 16,
    splitByUnicodeScript: true,
    splitByWhitespace: true,
    splitByNumber: true,
    treatWhitespaceAsSuffix: false,
    splitDigits: false,
    allowWhitespaceOnlyPieces: false,
    userDefinedSymbols: o.qa ? [NEWLINE_SYMBOL] : [],
    vocabularyOutputPieceScore: true,
    hardVocabLimit: true,
    useAllVocab: false,
    byteFallback: o.byteFallback,
    requiredChars: '',
    ...ids,
    unkSurface: ' \u2047 ',
    unkPiece: '<unk>',
    bosPiece: '<s>',
    eosPiece: '</s>',
    padPiece: '<pad>',
    trainExtremelyLargeCorpus: false,
    enableDifferentialPrivacy: false,
    differentialPrivacyNoiseLevel: 0,
    differentialPrivacyClippingThreshold: 0,
  };
}

function normalizerSpecFor(normalization: Normalization, qa: boolean): NormalizerSpec {
  return {
    name: normalization,
    // spm_train records identity as an empty table.
    precompiledCharsmap: normalization === 'nmt_nfkc' ? nmtNfkcCharsmap() : new Uint8Array(0),
    // Q&A: "Q:" reads the same at the start and after a newline, and indentation survives.
    addDummyPrefix: !qa,
    removeExtraWhitespaces: !qa,
    normalizationRuleTsv: '',
  };
}

/** Meta pieces in id order, as InitMetaPieces lays them out. */
function metaPieces(spec: TrainerSpec): ModelPiece[] {
  const byId = new Map<number, ModelPiece>();
  const put = (id: number | undefined, piece: string, type: ModelPiece['type']): void => {
    if (id !== undefined && id >= 0) byId.set(id, { piece, score: 0, type });
  };
  put(spec.unkId, spec.unkPiece!, PieceType.UNKNOWN);
  put(spec.bosId, spec.bosPiece!, PieceType.CONTROL);
  put(spec.eosId, spec.eosPiece!, PieceType.CONTROL);
  put(spec.padId, spec.padPiece!, PieceType.CONTROL);
  let id = 0;
  const append = (piece: string, type: ModelPiece['type']): void => {
    while (byId.has(id)) id++;
    byId.set(id, { piece, score: 0, type });
  };
  for (const s of spec.userDefinedSymbols ?? []) append(s, PieceType.USER_DEFINED);
  if (spec.byteFallback) for (let b = 0; b < 256; b++) append(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, PieceType.BYTE);
  return [...byId.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
}

/** A float as C++ `ostream << float` prints it (%g, 6 significant digits). */
export function formatScore(x: number): string {
  if (Object.is(x, -0)) return '-0';
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const [mant, exp] = x.toExponential(5).split('e');
  const e = Number(exp);
  if (e >= -5 && e < 6) return String(Number(x.toPrecision(6)));
  const m = mant.replace(/\.?0+$/, '');
  return `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

export function vocabText(pieces: ModelPiece[]): string {
  return pieces.map((p) => `${p.piece}\t${formatScore(p.score)}\n`).join('');
}

/** Replace each meta piece in normalized text by "\t" (PrefixMatcher::GlobalReplace, longest match). */
function replaceMetaPieces(text: string, metas: string[]): string {
  if (!metas.some((m) => text.includes(m))) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    let best = 0;
    for (const m of metas) if (m.length > best && text.startsWith(m, i)) best = m.length;
    if (best > 0) {
      out += '\t';
      i += best;
    } else {
      out += text[i++];
    }
  }
  return out;
}

/** Raw training units: the pairs' framed text (Q&A), or the lines (plain text). */
async function* readUnits(file: string, qa: boolean, onMalformed: (m: MalformedBlock) => void): AsyncGenerator<Buffer> {
  if (qa) {
    for await (const pair of readQaFile(file, { onMalformed })) yield Buffer.from(pairText(pair), 'utf8');
    return;
  }
  // Decoded once to refuse invalid UTF-8 in one line naming where, instead of training on it.
  const data = Buffer.from(readTextFile(file), 'utf8');
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0x0a, start);
    if (end < 0) end = data.length;
    yield data.subarray(start, end);
    start = end + 1;
  }
}

const UNK_CHAR_BYTES = Buffer.from('\u2585', 'utf8');

/** What the inputs and the options decide before reading the text: the mode and the settings that depend on it. */
interface ResolvedSettings {
  inputs: string[];
  /** Per input: Q&A text (else plain lines). */
  qaInputs: boolean[];
  /** Q&A mode: gptmed's special ids and "\n" piece; on when any input is Q&A text. */
  qa: boolean;
  coverage: number;
  normalization: Normalization;
  /** Longest unit in bytes kept (Infinity: no limit). */
  maxLength: number;
}

function checkFlags(opts: TrainTokenizerOptions): void {
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < 1) throw new UsageError(`--vocab-size must be a positive integer (got ${opts.vocabSize})`);
  if (/[\\/]$/.test(opts.outputPrefix) || opts.outputPrefix === '') {
    throw new UsageError(`--output-prefix ${opts.outputPrefix || "''"} ends in a directory; add a file name stem, e.g. ${path.join(opts.outputPrefix, 'qa')} writes qa.model and qa.vocab there`);
  }
}

function resolveSettings(opts: TrainTokenizerOptions, inputs: string[]): ResolvedSettings {
  const format = opts.inputFormat ?? 'auto';
  const qaInputs = inputs.map((file) => format === 'qa' || (format === 'auto' && startsWithQa(file)));
  const qa = qaInputs.includes(true);
  // Q&A data sets are small: every character they hold matters, so all are kept by default.
  const coverage = opts.characterCoverage ?? (qa ? 1 : 0.9995);
  if (!(coverage >= 0.98 && coverage <= 1)) throw new UsageError(`--character-coverage must be between 0.98 and 1 (got ${coverage})`);
  if (opts.maxSentenceLength !== undefined && !(Number.isInteger(opts.maxSentenceLength) && opts.maxSentenceLength >= 1)) {
    throw new UsageError(`--max-sentence-length must be a whole number of bytes, 1 or more (got ${opts.maxSentenceLength})`);
  }
  const maxLength = opts.maxSentenceLength ?? (qa ? Infinity : SPM_DEFAULT_MAX_SENTENCE_LENGTH);
  return { inputs, qaInputs, qa, coverage, normalization: opts.normalization ?? 'nmt_nfkc', maxLength };
}

interface CollectedUnits {
  units: Buffer[];
  /** The longest unit's bytes. */
  longest: number;
  skippedTooLong: number;
  pairs: number;
  lines: number;
}

/** The units of every input to train on (empty, too long and unknown-mark ones left out, with warnings). */
async function collectUnits(o: ResolvedSettings, warn: (message: string) => void): Promise<CollectedUnits> {
  const all: CollectedUnits = { units: [], longest: 0, skippedTooLong: 0, pairs: 0, lines: 0 };
  for (const [k, input] of o.inputs.entries()) {
    const qa = o.qaInputs[k];
    const before = all.units.length;
    const { malformed, tooLong } = await collectFileUnits(input, qa, o.maxLength, all);
    const kept = all.units.length - before;
    if (qa) all.pairs += kept;
    else all.lines += kept;
    all.skippedTooLong += tooLong;
    const what = qa ? 'pairs' : 'lines';
    if (malformed > 0 && kept > 0) warn(`${input}: ${malformed} malformed Q&A block(s) skipped (gptmed-convert --strict shows where)`);
    if (tooLong > 0) warn(`${input}: ${tooLong} ${what} longer than ${o.maxLength} bytes skipped; raise --max-sentence-length to keep them`);
    if (kept === 0) {
      throw new UserError(qa ? `${input}: no Q&A pairs found; give Q&A text (Q: ... / A: ...), see gptmed-convert` : `${input}: no text to train on (every line is empty or too long)`);
    }
  }
  return all;
}

/** One input's units appended to `into` (units, longest); returns the malformed blocks and too-long units it skipped. */
async function collectFileUnits(input: string, qa: boolean, maxLength: number, into: CollectedUnits): Promise<{ malformed: number; tooLong: number }> {
  let malformed = 0;
  let tooLong = 0;
  for await (const unit of readUnits(input, qa, () => malformed++)) {
    if (unit.length === 0) continue;
    if (unit.length > maxLength) {
      tooLong++;
      continue;
    }
    // spm_train skips sentences holding its reserved unknown-character mark.
    if (unit.includes(UNK_CHAR_BYTES)) continue;
    into.longest = Math.max(into.longest, unit.length);
    into.units.push(unit);
  }
  return { malformed, tooLong };
}

/** Each unit normalized as SentencePiece's trainer normalizes it, meta pieces replaced by "\t"; emptied units dropped. Empties `units`. */
function normalizedSentences(units: Buffer[], normalizer: Normalizer, metas: ModelPiece[], input: string): Array<[string, number]> {
  const metaStrings = metas.map((m) => m.piece);
  const sentences: Array<[string, number]> = [];
  for (const unit of units) {
    const text = replaceMetaPieces(Buffer.from(normalizer.normalizeBytes(unit)).toString('utf8'), metaStrings);
    if (text !== '') sentences.push([text, 1]);
  }
  units.length = 0;
  if (sentences.length === 0) throw new UserError(`${input}: no text to train on (nothing is left after normalization)`);
  return sentences;
}

/** BPE on the sentences, with progress; refuses a vocabulary the text cannot fill. */
async function trainPieces(sentences: Array<[string, number]>, opts: TrainTokenizerOptions, coverage: number, metaCount: number): Promise<BpeResult> {
  const budget = opts.vocabSize - metaCount;
  const progress = new Progress({ label: 'train-tokenizer', total: budget, unit: 'pieces', quiet: opts.quiet });
  const result = await trainBpe(sentences, {
    pieceBudget: budget,
    characterCoverage: coverage,
    maxSentencepieceLength: 16,
    splitByUnicodeScript: true,
    splitByNumber: true,
    splitDigits: false,
    onProgress: (done) => progress.update(done),
  });
  if (result.alphabetSize > budget) {
    throw new UserError(
      `--vocab-size ${opts.vocabSize} is too small for the ${result.alphabetSize} characters this text needs; use at least ${result.alphabetSize + metaCount} or lower --character-coverage`,
    );
  }
  if (result.shortBy > 0) {
    const largest = opts.vocabSize - result.shortBy;
    throw new UserError(`${[opts.input].flat().join(', ')}: this text can fill a vocabulary of at most ${largest} pieces, not ${opts.vocabSize}; use --vocab-size ${largest} or less`);
  }
  progress.finish();
  return result;
}

export async function trainTokenizer(opts: TrainTokenizerOptions): Promise<TrainTokenizerResult> {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const modelPath = `${opts.outputPrefix}.model`;
  const vocabPath = `${opts.outputPrefix}.vocab`;
  const inputs = [opts.input].flat();
  checkFlags(opts);
  if (inputs.length === 0) throw new UsageError('--input is missing; give the text file(s) to train on');
  for (const input of inputs) checkTextFile(input);
  checkOutput(modelPath, opts.force ?? false, '--output-prefix');
  checkOutput(vocabPath, opts.force ?? false, '--output-prefix');
  const o = resolveSettings(opts, inputs);
  const collected = await collectUnits(o, warn);

  const trainerSpec = trainerSpecFor({
    inputs,
    prefix: opts.outputPrefix,
    vocabSize: opts.vocabSize,
    coverage: Math.fround(o.coverage),
    maxSentenceLength: Number.isFinite(o.maxLength) ? o.maxLength : Math.max(SPM_DEFAULT_MAX_SENTENCE_LENGTH, collected.longest),
    byteFallback: opts.byteFallback ?? false,
    qa: o.qa,
  });
  const normalizerSpec = normalizerSpecFor(o.normalization, o.qa);
  const metas = metaPieces(trainerSpec);
  if (metas.length >= opts.vocabSize) throw new UsageError(`--vocab-size ${opts.vocabSize} is too small: the special pieces alone take ${metas.length}`);
  const sentences = normalizedSentences(collected.units, new Normalizer(normalizerSpec, trainerSpec.userDefinedSymbols), metas, inputs.join(', '));
  const result = await trainPieces(sentences, opts, o.coverage, metas.length);

  const pieces: ModelPiece[] = [...metas, ...result.pieces];
  const model: ModelProto = { pieces, trainerSpec, normalizerSpec };
  // The pair changes together: a kill never leaves a new .model beside an old .vocab.
  commitFiles([
    [modelPath, encodeModelProto(model)],
    [vocabPath, vocabText(pieces)],
  ]);
  return {
    modelPath: path.resolve(modelPath),
    vocabPath: path.resolve(vocabPath),
    mode: o.qa ? 'qa' : 'text',
    vocabSize: pieces.length,
    alphabetSize: result.alphabetSize,
    sentences: sentences.length,
    skippedTooLong: collected.skippedTooLong,
    pairs: collected.pairs,
    lines: collected.lines,
  };
}
