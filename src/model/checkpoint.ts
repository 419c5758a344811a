/**
 * THE checkpoint format (MANUAL.md "train", section "Checkpoint directory"):
 * one step directory, written and read back. Where step directories live, the
 * pointers to them and the rest of the run directory are src/model/run-dir.ts.
 *   <step dir>/manifest.json   what is saved, configs, tokenizer hash, training state
 *   <step dir>/weights.bin     model parameters, float32 little-endian, in parameterSpecs order
 *   <step dir>/optimizer.bin   optimizer moments, same layout (absent in weights-only exports)
 * A LoRA run's step directory holds only the adapters (weights.bin, in adapterSpecs order) and their
 * optimizer moments; its manifest's `lora` names the base checkpoint (path, step, sha256 of its weights.bin),
 * which is read, checked and merged in wherever the model is loaded (checkpointWeights).
 * A step directory is written to a temporary sibling and renamed, so a kill at
 * any moment leaves the old one or the new one whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDirAtomic } from '../common/atomic.js';
import { UserError } from '../common/errors.js';
import { sha256 } from '../common/hash.js';
import type { ShardsMeta } from '../dataset/shards.js';
import { validateModelConfig, type ModelConfig } from './config.js';
import { countParameters, GPT } from './gpt.js';
import { mergeAdapters, validateLoraRecord, type LoraRecord } from './lora.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Where each named tensor lies in a .bin file. */
export interface TensorEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements. */
  offset: number;
}

export interface TensorFileInfo {
  file: string;
  bytes: number;
  sha256: string;
  tensors: TensorEntry[];
}

/**
 * Where a training run stands between two steps (src/train keeps it; a resume
 * continues from it). gptmed-import writes trainRows 0: a model not yet trained
 * on any shards here.
 */
export interface TrainState {
  /** Epoch (0-based) of the next step, and the next row of that epoch's order. */
  epoch: number;
  cursor: number;
  /** Rows of the training data (a resumed run refuses data of another size). */
  trainRows: number;
  /** The run's seed: data order = shuffle(seed, epoch); dropout masks = f(seed, step). */
  seed: number;
  optimizerUpdates: number;
  tokensSeen: number;
  bestValLoss: number | null;
  bestStep: number | null;
  lastValLoss: number | null;
  evalsWithoutImprovement: number;
}

/** The state of a run before its first step, on `trainRows` rows of training data. */
export function newTrainState(trainRows: number, seed: number): TrainState {
  return { epoch: 0, cursor: 0, trainRows, seed, optimizerUpdates: 0, tokensSeen: 0, bestValLoss: null, bestStep: null, lastValLoss: null, evalsWithoutImprovement: 0 };
}

/**
 * Where a run's first weights came from (gptmed-train --init-from): the step directory, its step, and the
 * sha256 of its weights.bin. A run started from random weights has none.
 */
export interface InitFrom {
  path: string;
  step: number;
  sha256: string;
}

export interface CheckpointManifest {
  format: 'gptmed-checkpoint';
  version: 1;
  step: number;
  modelConfig: ModelConfig;
  parameterCount: number;
  /**
   * The tokenizer the model was trained with: generate loads it and checks the hash. `file` is relative to
   * the step directory (the run's own copy, ../tokenizer.model) since runs keep one; absolute before that.
   * `source` is the file the shards were made with, for the record.
   */
  tokenizer: { file: string; sha256: string; source?: string };
  specialIds: ShardsMeta['specialIds'];
  /** Tokens per shard row the model was trained on. */
  seqLen: number;
  /** The training settings of the run, as src/train's trainConfigJson writes them ({} for an imported model). */
  trainConfig: JsonObject;
  trainState: TrainState;
  /** The checkpoint the run started from (absent: random weights, or written before runs recorded it). */
  initFrom?: InitFrom;
  /** A LoRA run: its adapters' config and the base checkpoint they adapt (weights.bin then holds only the adapters). */
  lora?: LoraRecord;
  /** The tfjs backend that wrote it. */
  backend: string;
  createdAt: string;
  weights: TensorFileInfo;
  optimizer: TensorFileInfo | null;
}

export const manifestFile = 'manifest.json';

export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

function packTensors(file: string, arrays: readonly NamedArray[]): { info: TensorFileInfo; bytes: Uint8Array } {
  const total = arrays.reduce((n, a) => n + a.data.length, 0);
  const all = new Float32Array(total);
  const tensors: TensorEntry[] = [];
  let offset = 0;
  for (const a of arrays) {
    all.set(a.data, offset);
    tensors.push({ name: a.name, shape: a.shape, offset });
    offset += a.data.length;
  }
  const bytes = new Uint8Array(all.buffer);
  return { info: { file, bytes: bytes.length, sha256: sha256(bytes), tensors }, bytes };
}

/** What the writer of a checkpoint says; the rest of the manifest is computed. */
export type ManifestFields = Omit<CheckpointManifest, 'format' | 'version' | 'weights' | 'optimizer' | 'createdAt' | 'parameterCount' | 'modelConfig'>;

/** The model's parameters as named arrays, in parameterSpecs order; a model with LoRA adapters: the adapters only. */
export async function modelArrays(model: GPT): Promise<NamedArray[]> {
  const weights: NamedArray[] = [];
  for (const p of model.trainableParameters()) {
    weights.push({ name: p.name, shape: p.shape, data: (await p.variable.data()) as Float32Array });
  }
  return weights;
}

/**
 * Write the step directory `dir` atomically: `weights` (in parameterSpecs order; the parameter count is
 * their element count), the optimizer arrays (if any) and the manifest.
 */
export function writeCheckpoint(
  dir: string,
  fields: ManifestFields & { modelConfig: ModelConfig },
  weights: readonly NamedArray[],
  optimizer: readonly NamedArray[] | null,
): void {
  const w = packTensors('weights.bin', weights);
  const o = optimizer ? packTensors('optimizer.bin', optimizer) : null;
  const manifest: CheckpointManifest = {
    format: 'gptmed-checkpoint',
    version: 1,
    ...fields,
    // The model's: a LoRA run's weights.bin holds only its adapters.
    parameterCount: fields.lora ? countParameters(fields.modelConfig) : weights.reduce((n, a) => n + a.data.length, 0),
    createdAt: new Date().toISOString(),
    weights: w.info,
    optimizer: o?.info ?? null,
  };
  writeDirAtomic(dir, (tmp) => {
    fs.writeFileSync(path.join(tmp, w.info.file), w.bytes);
    if (o) fs.writeFileSync(path.join(tmp, o.info.file), o.bytes);
    fs.writeFileSync(path.join(tmp, manifestFile), `${JSON.stringify(manifest, null, 2)}\n`);
  });
}

export function readManifest(stepDir: string): CheckpointManifest {
  const file = path.join(stepDir, manifestFile);
  let m: CheckpointManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointManifest;
  } catch (err) {
    throw new UserError(`${file}: unreadable checkpoint manifest (${(err as Error).message.split('\n')[0]})`);
  }
  if (m.format !== 'gptmed-checkpoint' || m.version !== 1) {
    throw new UserError(`${file}: not a gptmed checkpoint manifest (format ${String(m.format)}, version ${String(m.version)})`);
  }
  validateModelConfig(m.modelConfig, `${file} modelConfig`);
  if (m.lora !== undefined) validateLoraRecord(m.lora, `${file} lora`);
  return m;
}

/** The named arrays of one of the checkpoint's tensor files, after checking its size and hash. */
export function readTensors(stepDir: string, info: TensorFileInfo): Map<string, Float32Array> {
  const file = path.join(stepDir, info.file);
  const buf = fs.readFileSync(file);
  if (buf.length !== info.bytes || sha256(buf) !== info.sha256) {
    throw new UserError(`${file}: damaged (size or sha256 differs from manifest.json); use another checkpoint`);
  }
  return tensorsOf(buf, info);
}

/** The tensors `info` lists, from a tensor file's bytes (already checked). */
function tensorsOf(buf: Buffer, info: TensorFileInfo): Map<string, Float32Array> {
  // Copy into an aligned buffer: a Buffer's byteOffset need not be a multiple of 4.
  const all = new Float32Array(new Uint8Array(buf).buffer);
  const out = new Map<string, Float32Array>();
  for (const t of info.tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    out.set(t.name, all.subarray(t.offset, t.offset + size));
  }
  return out;
}

/**
 * The weights of a LoRA run's base checkpoint (`stepDir` names the run's step directory, for messages),
 * merged if it is a LoRA run too, after checking that its weights.bin is the one the run was trained on
 * (read and hashed once: the recorded sha256 is the one its manifest had).
 */
export function readLoraBase(record: LoraRecord, stepDir: string): Map<string, Float32Array> {
  const dir = record.base.path;
  const what = `the base checkpoint of the LoRA run ${stepDir}`;
  if (!fs.existsSync(path.join(dir, manifestFile))) throw new UserError(`${dir}: ${what} is missing; restore it there (a LoRA run holds only its adapters)`);
  const manifest = readManifest(dir);
  const file = path.join(dir, manifest.weights.file);
  const buf = fs.existsSync(file) ? fs.readFileSync(file) : null;
  const now = buf && sha256(buf);
  if (!buf || now !== record.base.sha256) {
    throw new UserError(
      `${dir}: ${what} has changed since (weights.bin sha256 ${now ? now.slice(0, 12) : 'missing'}, the run was trained on ${record.base.sha256.slice(0, 12)}); restore the original`,
    );
  }
  return withAdapters(dir, manifest, tensorsOf(buf, manifest.weights));
}

/** The model's weights a step directory holds: its weights.bin, or for a LoRA run its base's with the adapters merged. */
export function checkpointWeights(stepDir: string, manifest: CheckpointManifest): Map<string, Float32Array> {
  return withAdapters(stepDir, manifest, readTensors(stepDir, manifest.weights));
}

/** `own` (a step directory's weights.bin) as model weights: merged into the base's for a LoRA run. */
function withAdapters(stepDir: string, manifest: CheckpointManifest, own: Map<string, Float32Array>): Map<string, Float32Array> {
  if (!manifest.lora) return own;
  return mergeAdapters(readLoraBase(manifest.lora, stepDir), own, manifest.modelConfig, manifest.lora, path.join(stepDir, manifest.weights.file));
}

/** Rebuild the model stored in a step directory (a LoRA run's: the base with its adapters merged). */
export function modelFromCheckpoint(stepDir: string, manifest: CheckpointManifest): GPT {
  return new GPT(manifest.modelConfig, { weights: checkpointWeights(stepDir, manifest) });
}
