/** gptmed-convert: CSV, TSV, JSON, JSONL or SQLite to Q&A text. */
import { pickSettings, type Setting } from '../common/settings.js';
import { convertFile, formatSummary, type ConvertOptions } from '../convert/index.js';
import { convertSettings } from '../convert/settings.js';
import { defineCommand } from './command.js';
import { forceFlag, quietFlag, settingFlags } from './flags.js';

const runFlags: readonly Setting[] = [
  { name: 'append', type: 'boolean', default: false, description: 'add the pairs to the end of an existing output' },
  forceFlag('overwrite an existing output'),
  quietFlag('no progress lines (the summary is still printed)'),
];

export const convertCommand = defineCommand({
  settings: convertSettings,
  builder: (y) =>
    settingFlags(
      y
        .positional('input', { type: 'string', demandOption: true, describe: 'file to convert' })
        .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'Q&A text file to write' }),
      [...convertSettings, ...runFlags],
    ),
  examples: [
    ['gptmed-convert faq.csv -o data/faq.qa.txt', 'a CSV with question and answer columns'],
    ['gptmed-convert emoji.csv --no-header --question-col 2 --answer-col 1 -o emoji.qa.txt', 'a CSV without a header, columns by number'],
    ['gptmed-convert deck.txt -o data/deck.qa.txt', "an Anki 'Notes in Plain Text' export"],
    ['gptmed-convert alpaca.json --dedupe --shuffle --seed 1 -o data/alpaca.qa.txt', 'Alpaca JSON, duplicates dropped, shuffled'],
    ['gptmed-convert faq.db --table faq --question-col q --answer-col a -o data/faq.qa.txt', 'an SQLite table'],
    ['gptmed-convert faq.db --query "SELECT title, body FROM posts WHERE score > 5" -o data/posts.qa.txt', 'an SQLite query'],
  ],
  handler: async (args) => {
    const summary = await convertFile({
      ...pickSettings<ConvertOptions>([...convertSettings, ...runFlags], args),
      input: args.input as string,
      output: args.output as string,
    });
    process.stdout.write(`gptmed-convert: ${formatSummary(summary)}\n`);
  },
});
