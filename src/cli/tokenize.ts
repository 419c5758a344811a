/** gptmed-tokenize: flags in, tokenizeDataset() out (loaded on use: it pulls in the SentencePiece wasm). */
import { pickSettings, type Setting } from '../common/settings.js';
import { tokenizeSettings } from '../dataset/settings.js';
import type { TokenizeOptions } from '../dataset/tokenize.js';
import { defineCommand } from './command.js';
import { forceFlag, quietFlag, settingFlags } from './flags.js';

const runFlags: readonly Setting[] = [forceFlag('replace an existing output directory'), quietFlag()];

export const tokenizeCommand = defineCommand({
  settings: tokenizeSettings,
  builder: (y) =>
    settingFlags(
      y
        .option('input', { type: 'string', demandOption: true, describe: 'Q&A text (.qa.txt); with --input-format text, plain text or a directory of .txt files' })
        .option('tokenizer', { type: 'string', demandOption: true, describe: 'tokenizer .model from gptmed-train-tokenizer' })
        .option('output-dir', { type: 'string', demandOption: true, describe: 'directory for train.npy, val.npy, meta.json' }),
      [...tokenizeSettings, ...runFlags],
    ),
  handler: async (args) => {
    const { tokenizeDataset } = await import('../dataset/tokenize.js');
    const meta = await tokenizeDataset({
      ...pickSettings<TokenizeOptions>([...tokenizeSettings, ...runFlags], args),
      input: args.input,
      tokenizer: args.tokenizer,
      outputDir: args.outputDir,
    });
    const s = meta.splits;
    const noun = meta.inputFormat === 'text' ? 'document' : 'pair';
    const parts = (['train', 'val', 'test'] as const).flatMap((k) => {
      const i = s[k];
      return i ? [`${k} ${i.pairs} ${noun}s -> ${i.rows} rows`] : [];
    });
    const split = s.train.splitPairs + s.val.splitPairs + (s.test?.splitPairs ?? 0);
    const cut = meta.inputFormat === 'text' ? 'continued into the next row' : 'longer than a row split into windows';
    process.stdout.write(
      `wrote ${args.outputDir}: ${parts.join(', ')} of ${meta.seqLen} ${meta.dtype} tokens; ` +
        `${noun} length p50 ${meta.pairTokens.p50}, p95 ${meta.pairTokens.p95}, max ${meta.pairTokens.max}; ` +
        `${split} ${noun}(s) ${cut}; packing ${(meta.packingEfficiency * 100).toFixed(1)}%\n`,
    );
  },
  examples: [
    ['gptmed-tokenize --input data/qa.txt --tokenizer tokenizer/qa.model --output-dir data/tokenized', 'train.npy, val.npy, meta.json with rows of 512 tokens'],
    ['gptmed-tokenize --input corpus.txt --input-format text --tokenizer tokenizer/both.model --output-dir data/pretrain', 'plain-text documents packed back to back, for pretraining'],
    ['gptmed-tokenize --input data/qa.txt --tokenizer tokenizer/qa.model --output-dir data/tokenized --max-length 256 --test-split 0.05 --mask-prompt', 'shorter rows, a test split, and answer masks'],
  ],
});
