/**
 * What an export reads: one checkpoint's weights and manifest, and the tokenizer it was trained with
 * (checked by hash). Plain arrays: exporting needs no tfjs backend.
 */
import * as fs from 'node:fs';
import { UserError } from '../common/errors.js';
import { sha256 } from '../common/hash.js';
import { checkpointWeights, readManifest, type CheckpointManifest } from '../model/checkpoint.js';
import { checkpointTokenizerPath, resolveCheckpoint } from '../model/run-dir.js';
import type { ModelProto } from '../tokenizer/model-proto.js';
import { parseModelFile } from '../tokenizer/tokenizer.js';

export interface ExportSource {
  /** The step directory the weights come from. */
  stepDir: string;
  manifest: CheckpointManifest;
  /** gptmed's parameters by name (parameterSpecs order and shapes); a LoRA run's merged. */
  weights: Map<string, Float32Array>;
  tokenizerPath: string;
  /** The tokenizer's .model bytes, as trained (exports copy them unchanged). */
  tokenizerBytes: Uint8Array;
  tokenizer: ModelProto;
}

/** Read the checkpoint a user names (a run directory's best, else latest; a step directory; a pointer file). */
export function readExportSource(checkpoint: string, flag = '--checkpoint'): ExportSource {
  const stepDir = resolveCheckpoint(checkpoint, 'best', flag);
  const manifest = readManifest(stepDir);
  // A LoRA run's: the base's weights with the adapters merged.
  const weights = checkpointWeights(stepDir, manifest);
  const tokenizerPath = checkpointTokenizerPath(stepDir, manifest);
  if (!tokenizerPath) throw new UserError(`${stepDir}: the tokenizer it was trained with, ${manifest.tokenizer.file}, is missing; the model cannot be exported without it`);
  const tokenizerBytes = new Uint8Array(fs.readFileSync(tokenizerPath));
  if (sha256(tokenizerBytes) !== manifest.tokenizer.sha256) {
    throw new UserError(`${tokenizerPath}: changed since this model was trained with it (sha256 ${manifest.tokenizer.sha256.slice(0, 12)} expected); restore the original`);
  }
  return { stepDir, manifest, weights, tokenizerPath, tokenizerBytes, tokenizer: parseModelFile(tokenizerPath, tokenizerBytes) };
}

/** Number format of exported weights: float32 as trained, or float16 (half the size). */
export const exportDtypes = ['f32', 'f16'] as const;
export type ExportDtype = (typeof exportDtypes)[number];
