/** The public library API of gptmed: each stage's functions, typed. */
export { UserError } from './common/errors.js';
export * from './convert/index.js';
export { loadTokenizer, type SpecialIds, type Tokenizer } from './tokenizer/index.js';
export { trainTokenizer, type TrainTokenizerOptions, type TrainTokenizerResult } from './tokenizer/train.js';
export * from './dataset/index.js';
export { tokenizeDataset, type TokenizeOptions } from './dataset/tokenize.js';
export * from './model/index.js';
export * from './train/index.js';
export { initBackend, devices, type BackendInfo, type Device } from './backend/index.js';
export {
  loadModel,
  generate,
  evaluate,
  type LoadModelOptions,
  type LoadedModel,
  type GenerateOptions,
  type GenerateResult,
  type EvaluateOptions,
  type EvaluateReport,
  type Answer,
  type GenerationOptions,
  type PresetName,
  type StopReason,
} from './generate/index.js';
export {
  exportModel,
  exportFormats,
  exportDtypes,
  type ExportOptions,
  type ExportResult,
  type ExportFormat,
  type ExportDtype,
} from './export/index.js';
