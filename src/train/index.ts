/** The train stage: the training run, its settings, and the pieces it is made of. */
export { train, type TrainOptions, type TrainResult, type TrainState } from './trainer.js';
export { resolveTrainConfig, trainDefaults, type TrainConfig } from './config.js';
export { epochOrder, loadSplit, makeBatch, unigramBaseline, type Batch } from './data.js';
export { AdamW, clipScale, globalNorm, type AdamWSettings } from './optimizer.js';
export { learningRateAt, type Schedule } from './schedule.js';
export { TrainStep, evaluateLoss, NonFiniteLossError, type StepResult } from './step.js';
export { readMetrics, type MetricsRecord } from './metrics.js';
