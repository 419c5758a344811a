/** The GPT model: config and presets, the network, its loss, the checkpoint format. */
export { modelSizes, loadPreset, resolveModelConfig, validateModelConfig, type ModelConfig, type ModelShape, type ModelSize } from './config.js';
export { GPT, KVCache, countParameters, parameterSpecs, type ForwardOptions, type GPTOptions, type Parameter, type ParameterSpec } from './gpt.js';
export { hasFusedCrossEntropy, weightedCrossEntropy } from './loss.js';
export {
  checkpointTokenizerPath,
  loadCheckpoint,
  modelFromCheckpoint,
  readManifest,
  readPointer,
  readTensors,
  resolveCheckpoint,
  runTokenizerFile,
  runTokenizerRef,
  saveCheckpoint,
  stepDirName,
  writePointer,
  type CheckpointManifest,
  type JsonObject,
  type JsonValue,
  type NamedArray,
  type PointerName,
} from './checkpoint.js';
