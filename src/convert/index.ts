/** The convert stage's public API: input files to Q&A text, and the Q&A text format itself. */
export { convertFile, detectFormat, formatSummary, INPUT_FORMATS, type ConvertObserver, type ConvertOptions, type ConvertSummary, type InputFormat } from './convert.js';
export {
  formatQa,
  formatQaPair,
  normalizeField,
  normalizePair,
  parseQa,
  QaParser,
  readQaFile,
  type MalformedBlock,
  type ParseOptions,
  type ParseResult,
  type QaPair,
} from './qa-format.js';
