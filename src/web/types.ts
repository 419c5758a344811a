/**
 * The shapes of gptmed-serve's answers the page reads (see MANUAL.md, "gptmed-serve"). Only the fields the
 * page uses are declared; the server may send more. They mirror the server's own types (JobView in
 * src/serve/jobs.ts, DatasetPreview, JobEstimate, ModelConfig) rather than import them: the page is compiled
 * on its own (tsconfig.web.json, DOM library), and an import, even of a type, would pull the server's
 * modules into that program and its output.
 */

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
export type JobStage = 'convert' | 'train-tokenizer' | 'tokenize' | 'train';
export type SettingValue = string | number | boolean;

export interface JobView {
  id: string;
  name: string | null;
  model: string;
  state: JobState;
  stage: JobStage | null;
  completedStages: JobStage[];
  step: number | null;
  totalSteps: number | null;
  trainLoss: number | null;
  valLoss: number | null;
  tokensPerSec: number | null;
  etaSeconds: number | null;
  error: string | null;
  config: Record<string, SettingValue>;
  upload: { filename: string; bytes: number } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface ModelShape {
  vocabSize?: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  dFf: number;
  maxSeqLen: number;
  dropout: number;
}

export interface ModelInfo {
  id: string;
  created: number;
  step: number;
  checkpoint: string;
  parameters: number;
  val_loss: number | null;
  context_length: number;
  model_config: ModelShape;
}

export interface Setting {
  key: string;
  flag: string;
  type: 'number' | 'boolean' | 'string';
  default: SettingValue | null;
  description: string;
  choices?: string[];
  stages: JobStage[];
}

export interface ModelSize extends ModelShape {
  name: string;
  parameters: number;
}

export interface SamplingSettings {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  noRepeatNgram: number;
}

export interface Options {
  training: { settings: Setting[]; modelSizes: ModelSize[]; defaultModelSize: string };
  generation: {
    defaults: SamplingSettings & { maxNewTokens: number; seed: number };
    presets: Record<string, SamplingSettings>;
  };
}

export interface DatasetPreview {
  filename: string;
  bytes: number;
  format: string;
  rowsRead: number;
  pairs: number;
  skipped: Record<string, number>;
  skippedRows: Array<{ at: string; reason: string }>;
  firstPairs: Array<{ question: string; answer: string; text: string }>;
  lengths: { unit: string; min: number; p50: number; p90: number; max: number; histogram: Array<{ from: number; to: number; count: number }> };
}

export interface JobEstimate {
  parameters: number;
  steps: number;
  tokensPerStep: number;
  tokensPerSec: number;
  seconds: number;
  basis: string;
}

export interface ModelExport {
  model: string;
  format: 'gguf' | 'hf';
  dtype: 'f32' | 'f16';
  file: string;
  bytes: number;
  url: string;
  createdAt?: string;
}

/** One record of a run's metrics.jsonl, as the job's event stream sends it. */
export type MetricsRecord =
  | { type: 'start'; step: number; parameters: number; unigramBaseline: number; totalSteps: number; backend: string }
  | { type: 'train'; step: number; epoch: number; loss: number; lr: number; gradNorm: number; tokensPerSec: number; tokensSeen: number }
  | { type: 'eval'; step: number; valLoss: number; perplexity: number; bestValLoss: number; unigramBaseline: number }
  | { type: 'stop'; step: number; reason: string; bestValLoss: number; bestStep: number };

export interface StateEvent {
  id: string;
  state: JobState;
  stage: JobStage | null;
  error: string | null;
  at: string;
}

export const ENDED_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);
