/**
 * A trained tokenizer, loaded from its `.model` file: encoding and decoding
 * go through sentencepiece-js (the C++ SentencePiece compiled to wasm), so
 * every stage segments text exactly as spm_encode and Python's sentencepiece
 * do. The wrapper swallows load errors, so the file is checked here first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import spm from 'sentencepiece-js';
import { UserError } from '../common/errors.js';
import { sha256 } from '../common/hash.js';
import { checkInputFile } from '../common/input.js';
import { decodeModelProto, PieceType, type ModelProto } from './model-proto.js';

export interface SpecialIds {
  pad: number;
  unk: number;
  bos: number;
  eos: number;
}

export interface Tokenizer {
  readonly vocabSize: number;
  /** Ids of the special pieces; -1 where the model has none (plain SentencePiece models have no pad). */
  readonly specialIds: SpecialIds;
  /** sha256 of the .model file bytes. */
  readonly sha256: string;
  readonly modelPath: string;
  /** The model file as parsed (pieces, trainer and normalizer specs). */
  readonly model: ModelProto;
  /** Token ids of `text`; no bos/eos added. */
  encode(text: string): number[];
  /** Text of `ids`; control pieces (pad, bos, eos) are dropped. */
  decode(ids: number[]): string;
  idToPiece(id: number): string;
}

const retrain = 're-run gptmed-train-tokenizer to make a new one';

/** Parse and check a model's bytes; the error names the file. */
export function parseModelFile(modelPath: string, bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = decodeModelProto(bytes);
  } catch {
    throw new UserError(`${modelPath}: not a SentencePiece model (the file is corrupt or of another kind); ${retrain}`);
  }
  const pieces = model.pieces ?? [];
  const unknowns = pieces.filter((p) => p.type === PieceType.UNKNOWN).length;
  if (pieces.length === 0 || unknowns !== 1 || pieces.some((p) => !p.piece)) {
    throw new UserError(`${modelPath}: not a valid SentencePiece model (no pieces, or not exactly one <unk>); ${retrain}`);
  }
  for (const [name, id] of Object.entries(specialIdsOf(model))) {
    if (id >= pieces.length) throw new UserError(`${modelPath}: the ${name} id ${id} is outside the vocabulary; ${retrain}`);
  }
  return model;
}

/** Special ids as the model's trainer_spec records them (SentencePiece defaults where absent). */
export function specialIdsOf(model: ModelProto): SpecialIds {
  const spec = model.trainerSpec ?? {};
  return { pad: spec.padId ?? -1, unk: spec.unkId ?? 0, bos: spec.bosId ?? 1, eos: spec.eosId ?? 2 };
}

class SentencePieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly specialIds: SpecialIds;
  private readonly pieces: string[];
  private readonly controlIds: Set<number>;

  constructor(
    readonly modelPath: string,
    readonly sha256: string,
    readonly model: ModelProto,
    private readonly processor: InstanceType<typeof spm.SentencePieceProcessor>,
  ) {
    this.vocabSize = model.pieces.length;
    this.specialIds = specialIdsOf(model);
    this.pieces = model.pieces.map((p) => p.piece);
    this.controlIds = new Set(model.pieces.flatMap((p, id) => (p.type === PieceType.CONTROL ? [id] : [])));
  }

  encode(text: string): number[] {
    return this.processor.encodeIds(text);
  }

  decode(ids: number[]): string {
    return this.processor.decodeIds(ids.filter((id) => !this.controlIds.has(id)));
  }

  idToPiece(id: number): string {
    const piece = this.pieces[id];
    if (piece === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    return piece;
  }
}

/** What a model file says about itself, without loading it into SentencePiece. */
export interface ModelInfo {
  modelPath: string;
  sha256: string;
  vocabSize: number;
  specialIds: SpecialIds;
}

function readModel(modelPath: string): { file: string; bytes: Buffer; model: ModelProto } {
  checkInputFile(modelPath, 'tokenizer model');
  const file = path.resolve(modelPath);
  const bytes = fs.readFileSync(file);
  return { file, bytes, model: parseModelFile(modelPath, bytes) };
}

/** Read and check a `.model` file's header facts (no wasm instance: cheap). */
export function inspectModel(modelPath: string): ModelInfo {
  const { file, bytes, model } = readModel(modelPath);
  return { modelPath: file, sha256: sha256(bytes), vocabSize: model.pieces.length, specialIds: specialIdsOf(model) };
}

/**
 * Tokenizers already loaded, by file and content: each SentencePiece instance is a wasm module that is
 * never freed (and adds process listeners), so a long-lived process that loads models again and again
 * (gptmed-serve's model cache) must not start a new one for the same file.
 */
const loaded = new Map<string, Promise<Tokenizer>>();

/** Load a `.model` file; a missing, corrupt or unloadable model is a UserError naming the file. */
export async function loadTokenizer(modelPath: string): Promise<Tokenizer> {
  const { file, bytes, model } = readModel(modelPath);
  const hash = sha256(bytes);
  const key = `${file}\0${hash}`;
  let tokenizer = loaded.get(key);
  if (!tokenizer) {
    tokenizer = startProcessor(modelPath, file, hash, model);
    loaded.set(key, tokenizer);
    tokenizer.catch(() => loaded.delete(key));
  }
  return tokenizer;
}

async function startProcessor(modelPath: string, file: string, hash: string, model: ModelProto): Promise<Tokenizer> {
  const processor = new spm.SentencePieceProcessor();
  await processor.load(file);
  const status = processor.processor.status();
  const state = status.ToString();
  status.delete();
  if (state !== 'OK') throw new UserError(`${modelPath}: SentencePiece cannot load this model (${state}); ${retrain}`);
  return new SentencePieceTokenizer(file, hash, model, processor);
}
