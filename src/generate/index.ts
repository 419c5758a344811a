/** The generate stage: sampling, KV-cached decoding, the stopping rule, evaluation metrics, and the library API. */
export { loadModel, defaultCheckpointDir, type LoadModelOptions, type LoadedModel } from './load.js';
export { encodeConversation, generate, type GenerateOptions, type GenerateResult } from './generate.js';
export { evaluate, type EvaluateOptions, type EvaluateReport } from './evaluate.js';
export { decodeAnswer, decodeAnswers, decodeTokenBatch, decodeTokens, fitPrompt, type Answer, type DecodeSettings, type FittedPrompt, type TokenLoopResult } from './decode.js';
export { PRESET_NAMES, generateConfig, resolveOptions, type GenerationOptions, type GenerationRequest, type PresetName } from './options.js';
export { readQuestionFile, parseQuestions, type Question, type QuestionFile } from './questions.js';
export { jsonLine, type AnswerRecord, type EvaluationRecord } from './records.js';
export type { StopReason } from './stopping.js';
export type { SamplingOptions } from './sampling.js';
