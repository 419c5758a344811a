/**
 * THE checkpoint format (MANUAL.md "train", section "Checkpoint directory").
 * A run directory holds step directories and two pointer files:
 *   <run>/step-000500/manifest.json   what is saved, configs, tokenizer hash, training state
 *   <run>/step-000500/weights.bin     model parameters, float32 little-endian, in parameterSpecs order
 *   <run>/step-000500/optimizer.bin   optimizer moments, same layout (absent in weights-only exports)
 *   <run>/latest, <run>/best          one line: the name of a step directory
 * A step directory is written to a temporary sibling and renamed; pointers are
 * replaced atomically, so a kill at any moment leaves loadable checkpoints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../common/atomic.js';
import { UserError } from '../common/errors.js';
import { sha256, sha256File } from '../common/hash.js';
import type { ShardsMeta } from '../dataset/shards.js';
import { validateModelConfig, type ModelConfig } from './config.js';
import { GPT } from './gpt.js';

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
  /** The training settings of the run (owned by src/train). */
  trainConfig: JsonObject;
  /** Epoch, data position, RNG seeds, losses (owned by src/train). */
  trainState: JsonObject;
  /** The tfjs backend that wrote it. */
  backend: string;
  createdAt: string;
  weights: TensorFileInfo;
  optimizer: TensorFileInfo | null;
}

export type PointerName = 'latest' | 'best';

export const manifestFile = 'manifest.json';
/** The run's own copy of its tokenizer, beside the step directories: a run directory moved or copied still has it. */
export const runTokenizerFile = 'tokenizer.model';
/** What a new manifest's tokenizer.file says: the run's copy, relative to the step directory. */
export const runTokenizerRef = `../${runTokenizerFile}`;

export function stepDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

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

export type ManifestFields = Omit<CheckpointManifest, 'format' | 'version' | 'weights' | 'optimizer' | 'createdAt' | 'parameterCount' | 'modelConfig'>;

/**
 * Write `<runDir>/step-NNNNNN` atomically: the model's weights, the optimizer
 * arrays (if any) and the manifest. Returns the step directory.
 */
export async function saveCheckpoint(runDir: string, model: GPT, fields: ManifestFields, optimizer: readonly NamedArray[] | null): Promise<string> {
  const weights: NamedArray[] = [];
  for (const p of model.parameters()) {
    weights.push({ name: p.name, shape: p.shape, data: (await p.variable.data()) as Float32Array });
  }
  return saveCheckpointArrays(runDir, { ...fields, modelConfig: model.config }, weights, optimizer);
}

/**
 * saveCheckpoint from plain arrays (no tfjs): `weights` in parameterSpecs order. gptmed-import writes
 * its checkpoint with this; the parameter count is the weights' element count.
 */
export function saveCheckpointArrays(
  runDir: string,
  fields: ManifestFields & { modelConfig: ModelConfig },
  weights: readonly NamedArray[],
  optimizer: readonly NamedArray[] | null,
): string {
  const w = packTensors('weights.bin', weights);
  const o = optimizer ? packTensors('optimizer.bin', optimizer) : null;
  const manifest: CheckpointManifest = {
    format: 'gptmed-checkpoint',
    version: 1,
    ...fields,
    parameterCount: weights.reduce((n, a) => n + a.data.length, 0),
    createdAt: new Date().toISOString(),
    weights: w.info,
    optimizer: o?.info ?? null,
  };
  const dir = path.join(runDir, stepDirName(fields.step));
  writeDirAtomic(dir, (tmp) => {
    fs.writeFileSync(path.join(tmp, w.info.file), w.bytes);
    if (o) fs.writeFileSync(path.join(tmp, o.info.file), o.bytes);
    fs.writeFileSync(path.join(tmp, manifestFile), `${JSON.stringify(manifest, null, 2)}\n`);
  });
  return dir;
}

/** Point `<runDir>/<name>` at a step directory (atomically). */
export function writePointer(runDir: string, name: PointerName, stepDir: string): void {
  writeFileAtomic(path.join(runDir, name), `${path.basename(stepDir)}\n`);
}

/**
 * What to do about a checkpoint that cannot be used, with the flag that takes another:
 * gptmed-train's --resume-from, or --checkpoint in gptmed-generate and gptmed-evaluate.
 */
const useAnother = (flag: string): string => `give another checkpoint with ${flag}`;

/** Why a step directory that should hold a checkpoint does not: it is gone, or it lacks its manifest. */
function stepDirProblem(dir: string): string | null {
  if (!fs.existsSync(dir)) return 'which is missing';
  if (!fs.existsSync(path.join(dir, manifestFile))) return `which has no ${manifestFile} (an incomplete or damaged checkpoint)`;
  return null;
}

/** The step directory a pointer names, or null when there is no pointer; `flag` is the one the user gave the checkpoint with. */
export function readPointer(runDir: string, name: PointerName, flag = '--resume-from'): string | null {
  const file = path.join(runDir, name);
  if (!fs.existsSync(file)) return null;
  const target = fs.readFileSync(file, 'utf8').trim();
  if (!/^step-\d+$/.test(target)) throw new UserError(`${file}: expected the name of a step directory (step-NNNNNN), found "${target.slice(0, 40)}"`);
  const dir = path.join(runDir, target);
  const problem = stepDirProblem(dir);
  if (problem) throw new UserError(`${file}: points to ${target}, ${problem}; ${useAnother(flag)}`);
  return dir;
}

/**
 * A step directory from what a user gives: a step directory, its manifest.json,
 * a `best`/`latest` pointer file, or a run directory (its `best`, else `latest`).
 * `flag` names the option it came from, for the advice in messages.
 */
export function resolveCheckpoint(pathOrRunDir: string, prefer: PointerName = 'best', flag = '--resume-from'): string {
  if (!fs.existsSync(pathOrRunDir)) throw new UserError(`${pathOrRunDir}: no such checkpoint or run directory`);
  const st = fs.statSync(pathOrRunDir);
  if (st.isFile()) {
    const base = path.basename(pathOrRunDir);
    if (base === manifestFile) return path.dirname(pathOrRunDir);
    if (base === 'best' || base === 'latest') return readPointer(path.dirname(pathOrRunDir), base, flag)!;
    throw new UserError(`${pathOrRunDir}: not a checkpoint; give a run directory or a step-NNNNNN directory`);
  }
  if (fs.existsSync(path.join(pathOrRunDir, manifestFile))) return pathOrRunDir;
  if (/^step-\d+$/.test(path.basename(path.resolve(pathOrRunDir)))) {
    throw new UserError(`${pathOrRunDir}: a step directory without ${manifestFile} (an incomplete or damaged checkpoint); ${useAnother(flag)}`);
  }
  const other: PointerName = prefer === 'best' ? 'latest' : 'best';
  const found = readPointer(pathOrRunDir, prefer, flag) ?? readPointer(pathOrRunDir, other, flag);
  if (!found) throw new UserError(`${pathOrRunDir}: no checkpoint here (no manifest.json, no best or latest pointer); train first with gptmed-train`);
  return found;
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
  return m;
}

/** The named arrays of one of the checkpoint's tensor files, after checking its size and hash. */
export function readTensors(stepDir: string, info: TensorFileInfo): Map<string, Float32Array> {
  const file = path.join(stepDir, info.file);
  const buf = fs.readFileSync(file);
  if (buf.length !== info.bytes || sha256(buf) !== info.sha256) {
    throw new UserError(`${file}: damaged (size or sha256 differs from manifest.json); use another checkpoint`);
  }
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
 * The tokenizer file of a checkpoint: the manifest's (relative to the step directory), else the run's
 * copy (a checkpoint written before runs kept one names an absolute path that may be gone). The first
 * with the recorded sha256 wins; else the first that exists (the caller reports the change); null if none.
 */
export function checkpointTokenizerPath(stepDir: string, manifest: CheckpointManifest): string | null {
  const candidates = [...new Set([path.resolve(stepDir, manifest.tokenizer.file), path.resolve(stepDir, runTokenizerRef)])].filter((f) => fs.existsSync(f));
  return candidates.find((f) => sha256File(f) === manifest.tokenizer.sha256) ?? candidates[0] ?? null;
}

/** Rebuild the model stored in a step directory. */
export function modelFromCheckpoint(stepDir: string, manifest: CheckpointManifest): GPT {
  return new GPT(manifest.modelConfig, { weights: readTensors(stepDir, manifest.weights) });
}

/**
 * Load a trained model: `pathOrRunDir` is a step directory, or a run directory
 * (its `best`, else its `latest`), given with `flag` (named in messages). The
 * backend must be initialised first (initBackend in src/backend).
 */
export async function loadCheckpoint(pathOrRunDir: string, flag = '--checkpoint'): Promise<{ model: GPT; manifest: CheckpointManifest; dir: string }> {
  const dir = resolveCheckpoint(pathOrRunDir, 'best', flag);
  const manifest = readManifest(dir);
  return { model: modelFromCheckpoint(dir, manifest), manifest, dir };
}
