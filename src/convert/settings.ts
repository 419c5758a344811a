/**
 * gptmed-convert's settings, declared once (src/common/settings.ts): its flags and the server's job keys
 * come from here. The ranges are checked by convertFile (convert.ts), which names the flags.
 */
import { TEXT_ENCODINGS } from '../common/input.js';
import type { Setting } from '../common/settings.js';
import { INPUT_FORMATS } from './convert.js';

export const convertSettings: readonly Setting[] = [
  { name: 'format', type: 'string', choices: INPUT_FORMATS, description: 'input format', defaultText: 'from the extension (.csv .tsv .json .jsonl .sqlite/.db; an Anki .txt export is tsv)' },
  { name: 'encoding', type: 'string', choices: TEXT_ENCODINGS, description: 'csv/tsv/json/jsonl: the encoding of the input', defaultText: 'utf8; a UTF-16 or UTF-8 byte order mark decides by itself' },
  { name: 'header', type: 'boolean', default: true, description: 'csv/tsv: the first row names the columns; --no-header for a file without one' },
  { name: 'questionCol', type: 'string', description: 'column (name, or number from 1) or JSON field holding the question', defaultText: 'detected: question, q, instruction, prompt, front, input; column 1 without a header' },
  { name: 'answerCol', type: 'string', description: 'column (name, or number from 1) or JSON field holding the answer', defaultText: 'detected: answer, a, output, completion, back, target; column 2 without a header' },
  { name: 'stripHtml', type: 'boolean', description: 'csv/tsv: remove HTML tags and entities from fields', defaultText: 'when an Anki export says #html:true' },
  { name: 'table', type: 'string', description: 'sqlite: table to read', defaultText: 'the only table' },
  { name: 'query', type: 'string', description: 'sqlite: a SELECT returning exactly two columns, question then answer' },
  { name: 'dedupe', type: 'boolean', default: false, description: 'drop a pair whose question and answer both equal an earlier one' },
  { name: 'minAnswerWords', type: 'number', description: 'drop pairs whose answer has fewer words' },
  { name: 'maxAnswerWords', type: 'number', description: 'drop pairs whose answer has more words' },
  { name: 'shuffle', type: 'boolean', default: false, description: 'write the pairs in a random order fixed by --seed' },
  { name: 'seed', type: 'number', default: 0, description: 'seed for --shuffle' },
];
