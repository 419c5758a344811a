/** The GPT model: config and presets, the network, its loss, the checkpoint format and the run directory. */
export { modelSizes, loadPreset, resolveModelConfig, validateModelConfig, type ModelConfig, type ModelShape, type ModelSize } from './config.js';
export { GPT, KVCache, countParameters, parameterSpecs, type ForwardOptions, type GPTOptions, type Parameter, type ParameterSpec } from './gpt.js';
export { adapterSpecs, countAdapterParameters, loraTargetNames, mergeAdapters, parseLoraTargets, type LoraConfig, type LoraRecord, type LoraTarget } from './lora.js';
export { hasFusedCrossEntropy, weightedCrossEntropy } from './loss.js';
export {
  checkpointWeights,
  modelFromCheckpoint,
  readLoraBase,
  newTrainState,
  readManifest,
  readTensors,
  type CheckpointManifest,
  type InitFrom,
  type JsonObject,
  type JsonValue,
  type NamedArray,
  type TrainState,
} from './checkpoint.js';
export {
  checkpointTokenizerPath,
  loadCheckpoint,
  readPointer,
  resolveCheckpoint,
  runConfigFile,
  runTokenizerFile,
  runTokenizerRef,
  saveCheckpoint,
  stepDirName,
  writePointer,
  type PointerName,
} from './run-dir.js';
