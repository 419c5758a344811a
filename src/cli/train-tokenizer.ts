/** gptmed-train-tokenizer: flags in, trainTokenizer() out (loaded on use, so other commands start fast). */
import type { InputFormat, Normalization } from '../tokenizer/train.js';
import { defineCommand } from './command.js';

export const trainTokenizerCommand = defineCommand({
  name: 'train-tokenizer',
  describe: 'Train a SentencePiece-compatible BPE tokenizer on Q&A text (or plain text, one sentence per line)',
  builder: (y) =>
    y
      .option('input', { type: 'string', demandOption: true, describe: 'Q&A text (.qa.txt) or plain text to train on' })
      .option('output-prefix', { type: 'string', demandOption: true, describe: 'writes <prefix>.model and <prefix>.vocab' })
      .option('vocab-size', { type: 'number', default: 8000, describe: 'pieces in the vocabulary, special pieces included' })
      .option('model-type', { type: 'string', choices: ['bpe'], default: 'bpe', describe: 'model type (BPE only)' })
      .option('character-coverage', { type: 'number', describe: 'share of characters the alphabet covers (0.98-1); rarer ones become <unk> [default: 0.9995 for plain text, 1 for Q&A]' })
      .option('normalization', { type: 'string', choices: ['nmt_nfkc', 'identity'], default: 'nmt_nfkc', describe: 'text normalization (nmt_nfkc: NFKC, as SentencePiece)' })
      .option('byte-fallback', { type: 'boolean', default: false, describe: 'add the 256 byte pieces, so unknown characters are spelled as bytes' })
      .option('max-sentence-length', { type: 'number', describe: 'skip (and report) lines/pairs longer than this many bytes [default: 4192 for plain text, no limit for Q&A]' })
      .option('input-format', { type: 'string', choices: ['auto', 'qa', 'text'], default: 'auto', describe: 'Q&A pairs or plain lines; auto: Q&A when the file starts with "Q:"' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite existing output files' })
      .option('quiet', { type: 'boolean', default: false, describe: 'no progress output' }),
  handler: async (args) => {
    const { trainTokenizer } = await import('../tokenizer/train.js');
    const r = await trainTokenizer({
      input: args.input,
      outputPrefix: args.outputPrefix,
      vocabSize: args.vocabSize,
      characterCoverage: args.characterCoverage,
      normalization: args.normalization as Normalization,
      byteFallback: args.byteFallback,
      maxSentenceLength: args.maxSentenceLength,
      inputFormat: args.inputFormat as InputFormat,
      force: args.force,
      quiet: args.quiet,
    });
    const unit = r.mode === 'qa' ? 'pairs' : 'lines';
    process.stdout.write(`wrote ${r.modelPath} and ${r.vocabPath}: ${r.vocabSize} pieces (${r.alphabetSize} characters), trained on ${r.sentences} ${unit} (${r.mode === 'qa' ? 'Q&A mode' : 'plain text'})\n`);
  },
  examples: [
    ['gptmed-train-tokenizer --input data/qa.txt --output-prefix tokenizer/qa --vocab-size 8000', 'train on Q&A text: tokenizer/qa.model and tokenizer/qa.vocab'],
    ['gptmed-train-tokenizer --input corpus.txt --output-prefix tok/corpus --vocab-size 1000 --normalization identity', 'plain text, no normalization'],
  ],
});
