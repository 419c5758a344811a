/** gptmed-tokenize: flags in, tokenizeDataset() out (loaded on use: it pulls in the SentencePiece wasm). */
import { defineCommand } from './command.js';

export const tokenizeCommand = defineCommand({
  name: 'tokenize',
  describe: 'Tokenize Q&A text into packed .npy train/val shards',
  builder: (y) =>
    y
      .option('input', { type: 'string', demandOption: true, describe: 'Q&A text (.qa.txt)' })
      .option('tokenizer', { type: 'string', demandOption: true, describe: 'tokenizer .model from gptmed-train-tokenizer' })
      .option('output-dir', { type: 'string', demandOption: true, describe: 'directory for train.npy, val.npy, meta.json' })
      .option('max-length', { type: 'number', default: 512, describe: 'tokens per row (the model context)' })
      .option('train-split', { type: 'number', default: 0.9, describe: 'share of pairs for training (the rest is validation)' })
      .option('test-split', { type: 'number', default: 0, describe: 'share of pairs held out first as test.npy (for gptmed-evaluate)' })
      .option('stride', { type: 'number', describe: 'step between the windows of a pair longer than a row [default: --max-length, no overlap]' })
      .option('seed', { type: 'number', default: 42, describe: 'seed of the pair split' })
      .option('shard-size', { type: 'number', describe: 'rows per .npy file (train-00000.npy, ...) [default: one file per split]' })
      .option('mask-prompt', { type: 'boolean', default: false, describe: 'also write <split>.mask.npy marking answer tokens, for answer-only loss' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing output directory' })
      .option('quiet', { type: 'boolean', default: false, describe: 'no progress output' }),
  handler: async (args) => {
    const { tokenizeDataset } = await import('../dataset/tokenize.js');
    const meta = await tokenizeDataset({
      input: args.input,
      tokenizer: args.tokenizer,
      outputDir: args.outputDir,
      maxLength: args.maxLength,
      trainSplit: args.trainSplit,
      testSplit: args.testSplit,
      stride: args.stride,
      seed: args.seed,
      shardSize: args.shardSize,
      maskPrompt: args.maskPrompt,
      force: args.force,
      quiet: args.quiet,
    });
    const s = meta.splits;
    const parts = (['train', 'val', 'test'] as const).flatMap((k) => {
      const i = s[k];
      return i ? [`${k} ${i.pairs} pairs -> ${i.rows} rows`] : [];
    });
    const split = s.train.splitPairs + s.val.splitPairs + (s.test?.splitPairs ?? 0);
    process.stdout.write(
      `wrote ${args.outputDir}: ${parts.join(', ')} of ${meta.seqLen} ${meta.dtype} tokens; ` +
        `pair length p50 ${meta.pairTokens.p50}, p95 ${meta.pairTokens.p95}, max ${meta.pairTokens.max}; ` +
        `${split} pair(s) longer than a row split into windows; packing ${(meta.packingEfficiency * 100).toFixed(1)}%\n`,
    );
  },
  examples: [
    ['gptmed-tokenize --input data/qa.txt --tokenizer tokenizer/qa.model --output-dir data/tokenized', 'train.npy, val.npy, meta.json with rows of 512 tokens'],
    ['gptmed-tokenize --input data/qa.txt --tokenizer tokenizer/qa.model --output-dir data/tokenized --max-length 256 --test-split 0.05 --mask-prompt', 'shorter rows, a test split, and answer masks'],
  ],
});
