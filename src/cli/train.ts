import { notYetCommand } from './not-yet.js';

export const trainCommand = notYetCommand('train', 'Train a GPT on tokenized shards', 4);
