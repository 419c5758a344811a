/** gptmed-train-tokenizer: flags in, trainTokenizer() out (loaded on use, so other commands start fast). */
import { pickSettings, type Setting } from '../common/settings.js';
import { tokenizerSettings } from '../tokenizer/settings.js';
import type { TrainTokenizerOptions } from '../tokenizer/train.js';
import { defineCommand } from './command.js';
import { forceFlag, quietFlag, settingFlags } from './flags.js';

const runFlags: readonly Setting[] = [forceFlag('overwrite existing output files'), quietFlag()];

export const trainTokenizerCommand = defineCommand({
  settings: tokenizerSettings,
  builder: (y) =>
    settingFlags(
      y
        .option('input', { type: 'string', array: true, demandOption: true, describe: 'Q&A text (.qa.txt) or plain text to train on; several files may be given, mixed' })
        .option('output-prefix', { type: 'string', demandOption: true, describe: 'writes <prefix>.model and <prefix>.vocab' }),
      [...tokenizerSettings, ...runFlags],
    ),
  handler: async (args) => {
    const { trainTokenizer } = await import('../tokenizer/train.js');
    const r = await trainTokenizer({
      ...(pickSettings<TrainTokenizerOptions>([...tokenizerSettings, ...runFlags], args) as Omit<TrainTokenizerOptions, 'input' | 'outputPrefix'>),
      input: args.input,
      outputPrefix: args.outputPrefix,
    });
    // One kind of input reads as before ("trained on 178 pairs"); mixed inputs name both.
    const units = r.pairs > 0 && r.lines > 0 ? `${r.pairs} pairs and ${r.lines} lines` : `${r.sentences} ${r.mode === 'qa' ? 'pairs' : 'lines'}`;
    process.stdout.write(`wrote ${r.modelPath} and ${r.vocabPath}: ${r.vocabSize} pieces (${r.alphabetSize} characters), trained on ${units} (${r.mode === 'qa' ? 'Q&A mode' : 'plain text'})\n`);
  },
  examples: [
    ['gptmed-train-tokenizer --input data/qa.txt --output-prefix tokenizer/qa --vocab-size 8000', 'train on Q&A text: tokenizer/qa.model and tokenizer/qa.vocab'],
    ['gptmed-train-tokenizer --input data/qa.txt corpus.txt --output-prefix tokenizer/both --vocab-size 8000', 'Q&A and plain text: one tokenizer for pretraining and fine-tuning'],
    ['gptmed-train-tokenizer --input corpus.txt --output-prefix tok/corpus --vocab-size 1000 --normalization identity', 'plain text, no normalization'],
  ],
});
