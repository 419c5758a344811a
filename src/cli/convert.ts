/** gptmed-convert: CSV, TSV, JSON, JSONL or SQLite to Q&A text. */
import { TEXT_ENCODINGS } from '../common/input.js';
import { convertFile, formatSummary, INPUT_FORMATS } from '../convert/index.js';
import { defineCommand } from './command.js';

export const convertCommand = defineCommand({
  name: 'convert',
  positionals: '<input>',
  describe: 'Convert CSV, TSV, JSON, JSONL or SQLite into Q&A text',
  builder: (y) =>
    y
      .positional('input', { type: 'string', demandOption: true, describe: 'file to convert' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'Q&A text file to write' })
      .option('format', { choices: INPUT_FORMATS, describe: 'input format', defaultDescription: 'from the extension (.csv .tsv .json .jsonl .sqlite/.db; an Anki .txt export is tsv)' })
      .option('encoding', { choices: TEXT_ENCODINGS, describe: 'csv/tsv/json/jsonl: the encoding of the input', defaultDescription: 'utf8; a UTF-16 or UTF-8 byte order mark decides by itself' })
      .option('header', { type: 'boolean', default: true, describe: 'csv/tsv: the first row names the columns; --no-header for a file without one' })
      .option('question-col', { type: 'string', describe: 'column (name, or number from 1) or JSON field holding the question', defaultDescription: 'detected: question, q, instruction, prompt, front, input; column 1 without a header' })
      .option('answer-col', { type: 'string', describe: 'column (name, or number from 1) or JSON field holding the answer', defaultDescription: 'detected: answer, a, output, completion, back, target; column 2 without a header' })
      .option('strip-html', { type: 'boolean', describe: 'csv/tsv: remove HTML tags and entities from fields', defaultDescription: 'when an Anki export says #html:true' })
      .option('table', { type: 'string', describe: 'sqlite: table to read', defaultDescription: 'the only table' })
      .option('query', { type: 'string', describe: 'sqlite: a SELECT returning exactly two columns, question then answer' })
      .option('dedupe', { type: 'boolean', default: false, describe: 'drop a pair whose question and answer both equal an earlier one' })
      .option('min-answer-words', { type: 'number', describe: 'drop pairs whose answer has fewer words' })
      .option('max-answer-words', { type: 'number', describe: 'drop pairs whose answer has more words' })
      .option('shuffle', { type: 'boolean', default: false, describe: 'write the pairs in a random order fixed by --seed' })
      .option('seed', { type: 'number', default: 0, describe: 'seed for --shuffle' })
      .option('append', { type: 'boolean', default: false, describe: 'add the pairs to the end of an existing output' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'overwrite an existing output' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress lines (the summary is still printed)' }),
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
      input: args.input,
      output: args.output,
      format: args.format,
      encoding: args.encoding,
      header: args.header,
      questionCol: args.questionCol,
      answerCol: args.answerCol,
      stripHtml: args.stripHtml,
      table: args.table,
      query: args.query,
      dedupe: args.dedupe,
      minAnswerWords: args.minAnswerWords,
      maxAnswerWords: args.maxAnswerWords,
      shuffle: args.shuffle,
      seed: args.seed,
      append: args.append,
      force: args.force,
      quiet: args.quiet,
    });
    process.stderr.write(`gptmed-convert: ${formatSummary(summary)}\n`);
  },
});
