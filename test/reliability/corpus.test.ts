/**
 * The bad-input corpus (issue 10): one table of cases across the six commands, each with the exit status,
 * the start of the one error line, and the check that nothing the user had was lost (see harness.ts).
 *
 * Categories:
 *   - inputs: missing, empty, binary, a directory; text with no pairs; malformed CSV / JSON / JSONL /
 *     SQLite (corrupt body, unknown table, a --query of one column); unknown columns
 *   - flags: unknown flags, missing required flags, bad choices, contradictory flags, and bad numbers
 *     (NaN for every numeric flag of every command; negative, zero, fractional where those are invalid):
 *     usage errors, exit 2 everywhere (item 15)
 *   - outputs: an existing output without --force (left unchanged), --force onto a symlink (the link is
 *     replaced, its target untouched), an output that is a directory, an output under a regular file,
 *     `--output-prefix dir/`
 *   - tokenizer files: missing, empty, garbage, a directory, a plain-text model, another model than the
 *     checkpoint's
 *   - shards: meta.json missing / invalid JSON / a bad vocabSize / a bad dtype / wrong row counts / another
 *     tokenizer's hash; a .npy truncated, of another dtype, of 0 rows; a path that does not exist; a directory
 *   - checkpoints and runs: not a run, a pointer to a missing step, a step without its manifest, a damaged
 *     weights.bin, an unreadable manifest, resume without a run, an existing run, a model too large for memory
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, it } from 'node:test';
import { fixturesDir, runCli, tempDir } from '../helpers.js';
import { binaryBytes, buildArtefacts, describeCases, editJson, losses, npyBytes, registerCases, snapshot, tinyTrainFlags, type Artefacts, type Case, type CaseContext, type Snapshot } from './harness.js';

const faqCsv = path.join(fixturesDir, 'convert', 'faq.csv');
const latexDb = path.join(fixturesDir, 'convert', 'latex.db');

let art: Artefacts;
let root: string;
let artBefore: Snapshot;
/** A plain-text tokenizer (no <pad>, <s>, </s>): trained once in before(). */
let plainModel: string;

// ---------------------------------------------------------------------------------------------------------
// Setups shared by several cases

const empty = (name: string) => (ctx: CaseContext) => void ctx.write(name, '');
const binary = (name: string) => (ctx: CaseContext) => void ctx.write(name, binaryBytes(4096));
const directory = (name: string) => (ctx: CaseContext) => void ctx.write(`${name}/user-notes.txt`, 'my notes\n');
const faq = (ctx: CaseContext): void => void ctx.copy(faqCsv, 'faq.csv');
const smallQa = (ctx: CaseContext): void => void ctx.copy(art.smallQa, 'small.qa.txt');
/** A copy of the shared shards as `shards/`, optionally changed. */
const shards = (edit?: (ctx: CaseContext) => void) => (ctx: CaseContext) => {
  ctx.copy(art.shards, 'shards');
  edit?.(ctx);
};
/** A copy of the shared run as `run/`, optionally changed. */
const run = (edit?: (ctx: CaseContext) => void) => (ctx: CaseContext) => {
  ctx.copy(art.run, 'run');
  edit?.(ctx);
};
const both = (...fns: Array<(ctx: CaseContext) => void>) => (ctx: CaseContext) => fns.forEach((f) => f(ctx));
const stepOf = (ctx: CaseContext): string => fs.readFileSync(ctx.p('run/latest'), 'utf8').trim();

// ---------------------------------------------------------------------------------------------------------
// Arguments

const convertTo = (input: string, ...more: string[]): string[] => [input, '-o', 'out.qa.txt', ...more];
const ttArgs = (...more: string[]): string[] => ['--input', art0('qa'), '--output-prefix', 'tok/q', '--vocab-size', '300', '--quiet', ...more];
const tokArgs = (...more: string[]): string[] => ['--input', art0('qa'), '--tokenizer', art0('tokenizer'), '--output-dir', 'out', '--max-length', '32', '--quiet', ...more];
/** gptmed-train on the copied shards into `ckpt/` (2 steps, if it ever trains). */
const trainArgs = (...more: string[]): string[] => [...tinyTrainFlags, '--train-data', 'shards/train.npy', '--val-data', 'shards/val.npy', '--checkpoint-dir', 'ckpt', '--max-steps', '2', '--eval-batches', '1', ...more];
/** gptmed-generate on the copied run. */
const genArgs = (...more: string[]): string[] => ['--checkpoint', 'run', '--device', 'wasm', ...more];
const evalArgs = (...more: string[]): string[] => ['--checkpoint', 'run', '--device', 'wasm', '--data', 'small.qa.txt', '--limit', '2', ...more];

/** The usage error a bad number must give (item 15): exit 2, a message naming the flag. */
function badNumber(command: Case['command'], flag: string, value: string, base: (...more: string[]) => string[], setup?: Case['setup'], named: RegExp = new RegExp(`^(.*\\W)?--${flag}\\b`)): Case {
  return { name: `--${flag} ${value}`, command, args: base(`--${flag}`, value), setup, exit: 2, message: named };
}

const cases: Case[] = [
  // ------------------------------------------------------------------------------------------- convert
  { name: 'missing input', command: 'convert', args: convertTo('nope.csv'), exit: 1, message: 'nope.csv: input file not found' },
  { name: 'empty input', command: 'convert', args: convertTo('empty.csv'), setup: empty('empty.csv'), exit: 1, message: 'empty.csv: input file is empty' },
  { name: 'binary input', command: 'convert', args: convertTo('bin.csv'), setup: binary('bin.csv'), exit: 1, message: 'bin.csv: looks like a binary file' },
  { name: 'a directory as input', command: 'convert', args: convertTo('d'), setup: directory('d'), exit: 1, message: 'd: is a directory' },
  { name: 'unknown flag', command: 'convert', args: convertTo('faq.csv', '--bogus'), setup: faq, exit: 2, message: 'Unknown argument: bogus' },
  { name: 'no -o', command: 'convert', args: ['faq.csv'], setup: faq, exit: 2, message: 'Missing required argument: output' },
  { name: 'bad --format', command: 'convert', args: convertTo('faq.csv', '--format', 'xml'), setup: faq, exit: 2, message: 'Invalid values: Argument: format' },
  {
    name: 'existing output without --force',
    command: 'convert',
    args: convertTo('faq.csv'),
    setup: both(faq, (ctx) => void ctx.write('out.qa.txt', 'Q: mine\nA: keep me\n')),
    exit: 1,
    message: 'out.qa.txt already exists; choose another output or pass --force',
  },
  {
    name: '--force onto a symlink replaces the link, not its target',
    command: 'convert',
    args: convertTo('faq.csv', '--force', '--quiet'),
    setup: both(faq, (ctx) => {
      ctx.write('precious.qa.txt', 'Q: mine\nA: keep me\n');
      fs.symlinkSync('precious.qa.txt', ctx.p('out.qa.txt'));
    }),
    exit: 0,
    message: null,
    outputs: ['out.qa.txt'],
    check: (ctx) => {
      assert.ok(fs.lstatSync(ctx.p('out.qa.txt')).isFile(), 'the symlink should be replaced by a file');
      assert.match(fs.readFileSync(ctx.p('out.qa.txt'), 'utf8'), /^Q: Why does Python use indentation/);
    },
  },
  {
    name: '-o onto a directory with --force',
    command: 'convert',
    args: ['faq.csv', '-o', 'd', '--force', '--quiet'],
    setup: both(faq, directory('d')),
    exit: 1,
    message: /^d: (is a directory|.*directory)/,
  },
  {
    name: '-o under a regular file',
    command: 'convert',
    args: ['faq.csv', '-o', 'o.txt/x.qa.txt', '--quiet'],
    setup: both(faq, (ctx) => void ctx.write('o.txt', 'a file of mine\n')),
    exit: 1,
    message: /^o\.txt(\/x\.qa\.txt)?: .*not a directory/,
  },
  badNumber('convert', 'min-answer-words', '-1', (...m) => convertTo('faq.csv', ...m), faq),
  badNumber('convert', 'max-answer-words', 'abc', (...m) => convertTo('faq.csv', ...m), faq),
  badNumber('convert', 'seed', '1.5', (...m) => convertTo('faq.csv', ...m), faq),
  { name: '--min-answer-words above --max-answer-words', command: 'convert', args: convertTo('faq.csv', '--min-answer-words', '5', '--max-answer-words', '2'), setup: faq, exit: 2, message: '--min-answer-words 5 is above --max-answer-words 2' },
  { name: '--table on a CSV', command: 'convert', args: convertTo('faq.csv', '--table', 't'), setup: faq, exit: 2, message: '--table and --query are for SQLite input' },
  {
    name: 'a quoted CSV field never closed',
    command: 'convert',
    args: convertTo('unclosed.csv', '--quiet'),
    setup: (ctx) => void ctx.write('unclosed.csv', 'question,answer\n"abc,def\nmore\n'),
    exit: 1,
    message: 'unclosed.csv:2: a quoted field that starts in this record is never closed',
  },
  { name: 'invalid JSON', command: 'convert', args: convertTo('bad.json'), setup: (ctx) => void ctx.write('bad.json', '[{"question": 1,'), exit: 1, message: 'bad.json:1: invalid JSON' },
  { name: 'CSV without recognised columns', command: 'convert', args: convertTo('nocol.csv'), setup: (ctx) => void ctx.write('nocol.csv', 'foo,bar\n1,2\n'), exit: 1, message: 'nocol.csv: no question/answer columns recognised' },
  { name: 'JSONL object without a recognised field', command: 'convert', args: convertTo('x.jsonl'), setup: (ctx) => void ctx.write('x.jsonl', '{"foo": 1}\n'), exit: 1, message: 'x.jsonl:1: object has no recognised field' },
  { name: 'unknown --question-col', command: 'convert', args: convertTo('faq.csv', '--question-col', 'nope'), setup: faq, exit: 1, message: 'faq.csv: --question-col: no column "nope"' },
  { name: 'SQLite: unknown --table', command: 'convert', args: convertTo('latex.db', '--table', 'nope'), setup: (ctx) => void ctx.copy(latexDb, 'latex.db'), exit: 1, message: 'latex.db: no table "nope"' },
  { name: 'SQLite: --query of one column', command: 'convert', args: convertTo('latex.db', '--query', 'SELECT 1'), setup: (ctx) => void ctx.copy(latexDb, 'latex.db'), exit: 1, message: 'latex.db: --query returns 1 column' },
  {
    name: 'SQLite header with a corrupt body',
    command: 'convert',
    args: convertTo('corrupt.db'),
    setup: (ctx) => void ctx.write('corrupt.db', Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), binaryBytes(8192, 7)])),
    exit: 1,
    message: /^corrupt\.db: /,
  },

  // ----------------------------------------------------------------------------------- train-tokenizer
  { name: 'missing input', command: 'train-tokenizer', args: ['--input', 'nope.qa.txt', '--output-prefix', 'tok/q'], exit: 1, message: 'nope.qa.txt: input file not found' },
  { name: 'empty input', command: 'train-tokenizer', args: ['--input', 'e.qa.txt', '--output-prefix', 'tok/q'], setup: empty('e.qa.txt'), exit: 1, message: 'e.qa.txt: input file is empty' },
  { name: 'binary input', command: 'train-tokenizer', args: ['--input', 'b.qa.txt', '--output-prefix', 'tok/q'], setup: binary('b.qa.txt'), exit: 1, message: 'b.qa.txt: looks like a binary file' },
  { name: 'a directory as input', command: 'train-tokenizer', args: ['--input', 'd', '--output-prefix', 'tok/q'], setup: directory('d'), exit: 1, message: 'd: is a directory' },
  { name: 'unknown flag', command: 'train-tokenizer', args: ttArgs('--bogus'), exit: 2, message: 'Unknown argument: bogus' },
  { name: 'no --output-prefix', command: 'train-tokenizer', args: ['--input', art0('qa')], exit: 2, message: 'Missing required argument: output-prefix' },
  { name: 'bad --model-type', command: 'train-tokenizer', args: ttArgs('--model-type', 'unigram'), exit: 2, message: 'Invalid values: Argument: model-type' },
  {
    name: 'existing .model without --force',
    command: 'train-tokenizer',
    args: ttArgs(),
    setup: (ctx) => {
      ctx.copy(art.tokenizer, 'tok/q.model');
      ctx.copy(art.vocab, 'tok/q.vocab');
    },
    exit: 1,
    message: 'tok/q.model already exists; choose another output or pass --force',
  },
  {
    name: 'a vocabulary the text cannot fill',
    command: 'train-tokenizer',
    args: ['--input', 'small.qa.txt', '--output-prefix', 'tok/q', '--vocab-size', '100000', '--quiet'],
    setup: smallQa,
    exit: 1,
    message: /^small\.qa\.txt: this text can fill a vocabulary of at most \d+ pieces/,
  },
  { name: '--output-prefix dir/ (would write dir/.model)', command: 'train-tokenizer', args: ['--input', art0('qa'), '--output-prefix', 'tt/', '--vocab-size', '300', '--quiet'], exit: 2, message: /--output-prefix/ },
  badNumber('train-tokenizer', 'vocab-size', '0', ttArgs),
  badNumber('train-tokenizer', 'character-coverage', 'abc', ttArgs),
  badNumber('train-tokenizer', 'max-sentence-length', '-1', ttArgs),

  // ------------------------------------------------------------------------------------------ tokenize
  { name: 'missing input', command: 'tokenize', args: ['--input', 'nope.qa.txt', '--tokenizer', art0('tokenizer'), '--output-dir', 'out'], exit: 1, message: 'nope.qa.txt: input file not found' },
  { name: 'empty input', command: 'tokenize', args: ['--input', 'e.qa.txt', '--tokenizer', art0('tokenizer'), '--output-dir', 'out'], setup: empty('e.qa.txt'), exit: 1, message: 'e.qa.txt: input file is empty' },
  { name: 'binary input', command: 'tokenize', args: ['--input', 'b.qa.txt', '--tokenizer', art0('tokenizer'), '--output-dir', 'out'], setup: binary('b.qa.txt'), exit: 1, message: 'b.qa.txt: looks like a binary file' },
  { name: 'a directory as input', command: 'tokenize', args: ['--input', 'd', '--tokenizer', art0('tokenizer'), '--output-dir', 'out'], setup: directory('d'), exit: 1, message: 'd: is a directory' },
  {
    name: 'text with no Q&A pairs (empty data: nothing written)',
    command: 'tokenize',
    args: ['--input', 'plain.txt', '--tokenizer', art0('tokenizer'), '--output-dir', 'out', '--quiet'],
    setup: (ctx) => void ctx.write('plain.txt', 'hello world\nno pairs here\n'),
    exit: 1,
    message: 'plain.txt: no Q&A pairs found',
  },
  {
    name: 'one pair: too few to split',
    command: 'tokenize',
    args: ['--input', 'one.qa.txt', '--tokenizer', art0('tokenizer'), '--output-dir', 'out', '--quiet'],
    setup: (ctx) => void ctx.write('one.qa.txt', 'Q: a question\nA: an answer\n'),
    exit: 1,
    message: 'one.qa.txt: 1 pair(s) are too few to split',
  },
  { name: 'missing tokenizer model', command: 'tokenize', args: ['--input', art0('qa'), '--tokenizer', 'nope.model', '--output-dir', 'out'], exit: 1, message: 'nope.model: tokenizer model file not found' },
  { name: 'garbage tokenizer model', command: 'tokenize', args: ['--input', art0('qa'), '--tokenizer', 'g.model', '--output-dir', 'out'], setup: binary('g.model'), exit: 1, message: 'g.model: not a SentencePiece model' },
  {
    name: 'a plain-text tokenizer (no <pad>)',
    command: 'tokenize',
    args: ['--input', art0('qa'), '--tokenizer', 'plain.model', '--output-dir', 'out'],
    setup: (ctx) => void ctx.copy(plainModel, 'plain.model'),
    exit: 1,
    message: 'plain.model: the tokenizer has no <pad> piece',
  },
  { name: 'existing output directory without --force', command: 'tokenize', args: tokArgs(), setup: (ctx) => void ctx.copy(art.shards, 'out'), exit: 1, message: 'out already exists; choose another output or pass --force' },
  {
    name: '--output-dir under a regular file',
    command: 'tokenize',
    args: ['--input', art0('qa'), '--tokenizer', art0('tokenizer'), '--output-dir', 'o.txt/shards', '--quiet'],
    setup: (ctx) => void ctx.write('o.txt', 'a file of mine\n'),
    exit: 1,
    message: /^o\.txt(\/shards)?: .*not a directory/,
  },
  { name: 'unknown flag', command: 'tokenize', args: tokArgs('--bogus'), exit: 2, message: 'Unknown argument: bogus' },
  { name: 'no --tokenizer', command: 'tokenize', args: ['--input', art0('qa'), '--output-dir', 'out'], exit: 2, message: 'Missing required argument: tokenizer' },
  { name: '--max-length 100000000 (beyond any context)', command: 'tokenize', args: tokArgs('--max-length', '100000000'), exit: 2, message: /--max-length/, timeoutMs: 30_000 },
  badNumber('tokenize', 'max-length', '1.5', tokArgs),
  badNumber('tokenize', 'train-split', 'abc', tokArgs),
  badNumber('tokenize', 'test-split', '-0.1', tokArgs),
  badNumber('tokenize', 'stride', '0', tokArgs),
  badNumber('tokenize', 'seed', '1.5', tokArgs),
  badNumber('tokenize', 'shard-size', '-1', tokArgs),

  // --------------------------------------------------------------------------------------------- train
  { name: '--train-data nope.npy names nope.npy', command: 'train', args: trainArgs('--train-data', 'nope.npy'), setup: shards(), exit: 1, message: /^nope\.npy: / },
  { name: '--val-data nope.npy names nope.npy', command: 'train', args: trainArgs('--val-data', 'nope.npy'), setup: shards(), exit: 1, message: /^nope\.npy: / },
  {
    name: 'a directory as --train-data is not told to give the directory',
    command: 'train',
    args: trainArgs('--train-data', 'shards'),
    setup: shards(),
    exit: 1,
    message: /^shards\/?: (?!.*give the directory)/,
  },
  { name: 'meta.json invalid JSON', command: 'train', args: trainArgs(), setup: shards((ctx) => void ctx.write('shards/meta.json', '{bad')), exit: 1, message: 'shards/meta.json: is not valid JSON' },
  {
    name: 'meta.json vocabSize -5 is invalid, not missing',
    command: 'train',
    args: trainArgs(),
    setup: shards((ctx) => editJson(ctx.p('shards/meta.json'), (m) => (m.vocabSize = -5))),
    exit: 1,
    message: /^shards\/meta\.json: vocabSize (?!is missing)/,
  },
  {
    name: 'meta.json dtype float32',
    command: 'train',
    args: trainArgs(),
    setup: shards((ctx) => editJson(ctx.p('shards/meta.json'), (m) => (m.dtype = 'float32'))),
    exit: 1,
    message: 'shards/meta.json: dtype is not uint16 or int32',
  },
  {
    name: 'train.npy of another dtype than meta.json',
    command: 'train',
    args: trainArgs(),
    setup: shards((ctx) => ctx.write('shards/train.npy', npyBytes('<f4', [4, 32], new Float32Array(128)))),
    exit: 1,
    message: 'shards/train.npy: has dtype f4, meta.json says uint16',
  },
  {
    name: 'a truncated train.npy',
    command: 'train',
    args: trainArgs(),
    setup: shards((ctx) => {
      const bytes = fs.readFileSync(ctx.p('shards/train.npy'));
      ctx.write('shards/train.npy', bytes.subarray(0, Math.floor(bytes.length / 3)));
    }),
    exit: 1,
    message: /^shards\/train\.npy: /,
  },
  {
    name: 'meta.json row count 99999',
    command: 'train',
    args: trainArgs(),
    setup: shards((ctx) => editJson(ctx.p('shards/meta.json'), (m) => (m.splits.train.rows = 99999))),
    exit: 1,
    message: /^shards\/(train\.npy|meta\.json): /,
  },
  {
    name: 'shards of another tokenizer (sha256 in meta.json differs)',
    command: 'train',
    args: trainArgs(),
    setup: shards((ctx) => editJson(ctx.p('shards/meta.json'), (m) => (m.tokenizer.sha256 = '0'.repeat(64)))),
    exit: 1,
    // Which files (the tokenizer .model, the shards) and which hashes (now, and as the shards recorded it) differ.
    message: /^(?=.*quiz\.model)(?=.*shards\/(train\.npy|meta\.json))(?=.*000000000000)/,
  },
  {
    name: 'a train shard of 0 rows (empty data: refused before anything is written)',
    command: 'train',
    args: trainArgs(),
    setup: shards((ctx) => {
      ctx.write('shards/train.npy', npyBytes('<u2', [0, 32], new Uint16Array(0)));
      editJson(ctx.p('shards/meta.json'), (m) => Object.assign(m.splits.train, { rows: 0, pairs: 0, tokens: 0, splitPairs: 0 }));
    }),
    exit: 1,
    message: /train\.npy/,
  },
  {
    name: '--d-model 16384: the out-of-memory line, before allocating',
    command: 'train',
    args: trainArgs('--d-model', '16384'),
    setup: shards(),
    exit: 1,
    message: 'out of memory: ',
    timeoutMs: 20_000,
  },
  {
    name: 'rows longer than the context',
    command: 'train',
    args: trainArgs('--max-seq-len', '16'),
    setup: shards(),
    exit: 1,
    message: 'shards/train.npy: rows of 32 tokens need a context of 31',
  },
  {
    name: 'an existing run without --force or --resume',
    command: 'train',
    args: [...trainArgs(), '--checkpoint-dir', 'run'],
    setup: both(shards(), run()),
    exit: 1,
    message: 'run already holds a training run',
  },
  { name: '--resume without a run', command: 'train', args: trainArgs('--resume'), setup: shards(), exit: 1, message: 'ckpt: no checkpoint to resume' },
  { name: '--resume with --force', command: 'train', args: trainArgs('--resume', '--force'), setup: shards(), exit: 2, message: 'Arguments force and resume are mutually exclusive' },
  {
    name: '--checkpoint-dir is a regular file',
    command: 'train',
    args: trainArgs('--checkpoint-dir', 'ckpt.txt'),
    setup: both(shards(), (ctx) => void ctx.write('ckpt.txt', 'a file of mine\n')),
    exit: 1,
    message: /^ckpt\.txt: /,
  },
  { name: 'unknown flag', command: 'train', args: trainArgs('--bogus'), setup: shards(), exit: 2, message: 'Unknown argument: bogus' },
  // One bad number for each numeric flag: NaN, negative, zero or fractional, whichever the flag refuses.
  ...(
    [
      ['d-model', 'abc'],
      ['n-layers', '0'],
      ['n-heads', '-2'],
      ['d-ff', '1.5'],
      ['max-seq-len', '0'],
      ['dropout', '1.5'],
      ['num-epochs', 'abc'],
      ['max-steps', '1.5'],
      ['batch-size', '0'],
      ['grad-accum', '-1'],
      ['learning-rate', '-1'],
      ['min-lr', 'abc'],
      ['warmup-steps', '1.5'],
      ['weight-decay', '-1'],
      ['grad-clip', 'abc'],
      ['eval-interval', '0'],
      ['eval-batches', '1.5'],
      ['save-interval', '-5'],
      ['keep-last', '0'],
      ['early-stopping-patience', '1.5'],
      ['log-interval', 'abc'],
      ['seed', '-1'],
    ] as const
  ).map(([flag, value]) => badNumber('train', flag, value, trainArgs, shards())),

  // ------------------------------------------------------------------------------------------ generate
  { name: 'no --prompt, --input-file or --interactive', command: 'generate', args: genArgs(), setup: run(), exit: 2, message: 'give exactly one of --prompt, --input-file or --interactive' },
  { name: '-o without --input-file', command: 'generate', args: genArgs('-p', 'hi', '-o', 'a.jsonl'), setup: run(), exit: 2, message: '--output goes with --input-file' },
  { name: '--checkpoint a directory that is not a run', command: 'generate', args: ['--checkpoint', 'd', '--device', 'wasm', '-p', 'hi'], setup: directory('d'), exit: 1, message: 'd: no checkpoint here' },
  {
    name: 'best names a step that is missing (no train-only advice)',
    command: 'generate',
    args: genArgs('-p', 'hi'),
    setup: run((ctx) => void ctx.write('run/best', 'step-000099\n')),
    exit: 1,
    message: /^run\/best: points to step-000099(?!.*--resume-from)/,
  },
  {
    name: 'a step directory without its manifest is not called missing',
    command: 'generate',
    args: genArgs('-p', 'hi'),
    setup: run((ctx) => fs.rmSync(ctx.p(`run/${stepOf(ctx)}/manifest.json`))),
    exit: 1,
    message: /^(?!.*which is missing)(?!.*--resume-from).*manifest\.json/,
  },
  {
    name: 'a damaged weights.bin',
    command: 'generate',
    args: genArgs('-p', 'hi'),
    setup: run((ctx) => {
      const w = ctx.p(`run/${stepOf(ctx)}/weights.bin`);
      fs.truncateSync(w, 1000);
    }),
    exit: 1,
    message: /^run\/step-\d+\/weights\.bin: damaged/,
  },
  {
    name: '--tokenizer another model than the checkpoint’s',
    command: 'generate',
    args: genArgs('-p', 'hi', '--tokenizer', 'plain.model'),
    setup: both(run(), (ctx) => void ctx.copy(plainModel, 'plain.model')),
    exit: 1,
    message: 'plain.model: not the tokenizer this model was trained with',
  },
  { name: '--input-file missing', command: 'generate', args: genArgs('--input-file', 'nope.txt', '-o', 'a.jsonl'), setup: run(), exit: 1, message: 'nope.txt: questions file not found' },
  {
    name: 'existing -o without --force',
    command: 'generate',
    args: genArgs('--input-file', 'small.qa.txt', '-o', 'a.jsonl'),
    setup: both(run(), smallQa, (ctx) => void ctx.write('a.jsonl', '{"mine": true}\n')),
    exit: 1,
    message: 'a.jsonl already exists; choose another output or pass --force',
  },
  {
    name: '-o onto a directory with --force names the directory, not a temporary',
    command: 'generate',
    args: genArgs('--input-file', 'small.qa.txt', '-o', 'out', '--force', '--max-new-tokens', '4'),
    setup: both(run(), smallQa, directory('out')),
    exit: 1,
    message: /^out: /,
  },
  {
    name: '-o under a regular file',
    command: 'generate',
    args: genArgs('--input-file', 'small.qa.txt', '-o', 'o.txt/a.jsonl', '--max-new-tokens', '4'),
    setup: both(run(), smallQa, (ctx) => void ctx.write('o.txt', 'a file of mine\n')),
    exit: 1,
    message: /^o\.txt(\/a\.jsonl)?: .*not a directory/,
  },
  { name: '--no-repeat-ngram abc (the documented spelling)', command: 'generate', args: genArgs('-p', 'hi', '--no-repeat-ngram', 'abc'), setup: run(), exit: 2, message: /^(.*\W)?--no-repeat-ngram\b/ },
  ...(
    [
      ['max-new-tokens', '0'],
      ['temperature', '-1'],
      ['top-k', '1.5'],
      ['top-p', 'abc'],
      ['repetition-penalty', '0'],
      ['seed', '1.5'],
      ['num-samples', 'abc'],
    ] as const
  ).map(([flag, value]) => badNumber('generate', flag, value, (...m) => genArgs('-p', 'hi', ...m), run())),

  // ------------------------------------------------------------------------------------------ evaluate
  { name: '--data missing', command: 'evaluate', args: genArgs('--data', 'nope.qa.txt'), setup: run(), exit: 1, message: 'nope.qa.txt: evaluation data file not found' },
  { name: '--checkpoint a directory that is not a run', command: 'evaluate', args: ['--checkpoint', 'd', '--device', 'wasm', '--data', 'small.qa.txt'], setup: both(smallQa, directory('d')), exit: 1, message: 'd: no checkpoint here' },
  {
    name: 'an existing -o answers.jsonl without --force',
    command: 'evaluate',
    args: evalArgs('-o', 'answers.jsonl'),
    setup: both(run(), smallQa, (ctx) => void ctx.write('answers.jsonl', '{"mine": true}\n')),
    exit: 1,
    message: 'answers.jsonl already exists; choose another output or pass --force',
  },
  {
    name: '--force onto a symlink replaces the link, not its target',
    command: 'evaluate',
    args: evalArgs('-o', 'a.jsonl', '--force', '--max-new-tokens', '4'),
    setup: both(run(), smallQa, (ctx) => {
      ctx.write('precious.jsonl', '{"mine": true}\n');
      fs.symlinkSync('precious.jsonl', ctx.p('a.jsonl'));
    }),
    exit: 0,
    message: null,
    outputs: ['a.jsonl'],
    check: (ctx) => {
      assert.ok(fs.lstatSync(ctx.p('a.jsonl')).isFile(), 'the symlink should be replaced by a file');
      assert.equal(fs.readFileSync(ctx.p('a.jsonl'), 'utf8').trim().split('\n').length, 2);
    },
  },
  {
    name: '-o onto a directory with --force names the directory, not a temporary',
    command: 'evaluate',
    args: evalArgs('-o', 'out', '--force', '--max-new-tokens', '4'),
    setup: both(run(), smallQa, directory('out')),
    exit: 1,
    message: /^out: /,
  },
  {
    name: 'a step directory without its manifest is not called missing',
    command: 'evaluate',
    args: evalArgs(),
    setup: both(smallQa, run((ctx) => fs.rmSync(ctx.p(`run/${stepOf(ctx)}/manifest.json`)))),
    exit: 1,
    message: /^(?!.*which is missing)(?!.*--resume-from).*manifest\.json/,
  },
  badNumber('evaluate', 'limit', '0', evalArgs, both(run(), smallQa)),
];

/**
 * Arguments are built when the table is, before before() has built the artefacts: `art0(key)` is a
 * placeholder resolved per case (see resolveArgs below).
 */
function art0(key: keyof Artefacts): string {
  return `@art:${key}`;
}

const resolved: Case[] = cases.map((c) => ({
  ...c,
  args: (ctx: CaseContext) => {
    const raw = typeof c.args === 'function' ? c.args(ctx) : c.args;
    return raw.map((a) => (a.startsWith('@art:') ? String(art[a.slice(5) as keyof Artefacts]) : a));
  },
}));

describeCases('the bad-input corpus', () => {
  before(() => {
    art = buildArtefacts('run');
    root = tempDir('gptmed-reliability-corpus-');
    const prefix = path.join(art.root, 'plain', 'plain');
    const r = runCli('train-tokenizer', ['--input', art.qa, '--output-prefix', prefix, '--vocab-size', '200', '--input-format', 'text', '--quiet']);
    assert.equal(r.status, 0, r.stderr);
    plainModel = `${prefix}.model`;
    artBefore = snapshot(art.root);
  });

  it('holds at least 100 cases over all six commands', () => {
    assert.ok(cases.length >= 100, `${cases.length} cases`);
    assert.deepEqual(new Set(cases.map((c) => c.command)), new Set(['convert', 'train-tokenizer', 'tokenize', 'train', 'generate', 'evaluate']));
  });

  registerCases(resolved, () => art, () => root);

  after(() => {
    // The shared artefacts are read-only inputs of every case: they must come out as they went in.
    const problems = losses(artBefore, snapshot(art.root), 'artefacts');
    assert.deepEqual(problems, [], problems.join('\n'));
  });
});
