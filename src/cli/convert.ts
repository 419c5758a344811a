import { notYetCommand } from './not-yet.js';

export const convertCommand = notYetCommand('convert', 'Convert CSV, TSV, JSON, JSONL or SQLite into Q&A text', 2);
