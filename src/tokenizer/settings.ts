/**
 * gptmed-train-tokenizer's settings, declared once (src/common/settings.ts): its flags and the server's
 * job keys come from here. The ranges are checked by trainTokenizer (train.ts).
 */
import type { Setting } from '../common/settings.js';
import { textInputFormats } from '../convert/qa-format.js';

export const tokenizerSettings: readonly Setting[] = [
  { name: 'vocabSize', type: 'number', default: 8000, description: 'pieces in the vocabulary, special pieces included' },
  { name: 'modelType', type: 'string', choices: ['bpe'], default: 'bpe', description: 'model type (BPE only)' },
  {
    name: 'characterCoverage',
    type: 'number',
    description: 'share of characters the alphabet covers (0.98-1); rarer ones become <unk>',
    defaultText: '0.9995 for plain text, 1 for Q&A',
  },
  { name: 'normalization', type: 'string', choices: ['nmt_nfkc', 'identity'], default: 'nmt_nfkc', description: 'text normalization (nmt_nfkc: NFKC, as SentencePiece)' },
  { name: 'byteFallback', type: 'boolean', default: false, description: 'add the 256 byte pieces, so unknown characters are spelled as bytes' },
  {
    name: 'maxSentenceLength',
    type: 'number',
    description: 'skip (and report) lines/pairs longer than this many bytes',
    defaultText: '4192 for plain text, no limit for Q&A',
  },
  { name: 'inputFormat', type: 'string', choices: textInputFormats, default: 'auto', description: 'Q&A pairs or plain lines, for every --input; auto: each file is Q&A when it starts with "Q:"' },
];
