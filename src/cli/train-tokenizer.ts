import { notYetCommand } from './not-yet.js';

export const trainTokenizerCommand = notYetCommand('train-tokenizer', 'Train a SentencePiece-compatible BPE tokenizer on Q&A text', 3);
