/** The tokenizer stage: training a SentencePiece-compatible BPE model, and loading one. */
export { loadTokenizer, type SpecialIds, type Tokenizer } from './tokenizer.js';
