import { notYetCommand } from './not-yet.js';

export const tokenizeCommand = notYetCommand('tokenize', 'Tokenize Q&A text into .npy train/val shards', 3);
