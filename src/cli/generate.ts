import { notYetCommand } from './not-yet.js';

export const generateCommand = notYetCommand('generate', 'Answer questions with a trained model', 5);
