/**
 * gptmed-tokenize's settings, declared once (src/common/settings.ts): its flags and the server's job keys
 * come from here. The ranges are checked by tokenizeDataset (tokenize.ts).
 */
import type { Setting } from '../common/settings.js';
import { textInputFormats } from '../convert/qa-format.js';

export const tokenizeSettings: readonly Setting[] = [
  { name: 'maxLength', type: 'number', default: 512, description: 'tokens per row (the model context)' },
  { name: 'trainSplit', type: 'number', default: 0.9, description: 'share of pairs for training (the rest is validation)' },
  { name: 'testSplit', type: 'number', default: 0, description: 'share of pairs held out first as test.npy (for gptmed-evaluate)' },
  { name: 'stride', type: 'number', description: 'step between the windows of a pair longer than a row', defaultText: '--max-length, no overlap' },
  { name: 'seed', type: 'number', default: 42, description: 'seed of the pair split' },
  { name: 'shardSize', type: 'number', description: 'rows per .npy file (train-00000.npy, ...)', defaultText: 'one file per split' },
  {
    name: 'inputFormat',
    type: 'string',
    choices: textInputFormats,
    default: 'qa',
    description: 'qa: Q&A text; text: plain-text documents (blank-line separated, or a directory of .txt files); auto: Q&A when the file starts with "Q:"',
  },
  { name: 'maskPrompt', type: 'boolean', default: false, description: 'also write <split>.mask.npy marking answer tokens, for answer-only loss' },
];
