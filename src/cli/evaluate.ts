import { notYetCommand } from './not-yet.js';

export const evaluateCommand = notYetCommand('evaluate', 'Measure a trained model on held-out Q&A pairs', 5);
