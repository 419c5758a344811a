/**
 * The SentencePiece model file (`.model`): a `ModelProto` from the vendored
 * sentencepiece_model.proto, read and written with protobufjs. This module is
 * the one place that knows the wire format; everything else uses these types.
 */
import protobuf from 'protobufjs';
import { NMT_NFKC_CHARSMAP_BASE64, SENTENCEPIECE_MODEL_PROTO } from './assets.js';

/** ModelProto.SentencePiece.Type. */
export const PieceType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;
export type PieceTypeId = (typeof PieceType)[keyof typeof PieceType];

export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface ModelPiece {
  piece: string;
  score: number;
  /** Absent means NORMAL. */
  type?: PieceTypeId;
}

/** The TrainerSpec fields gptmed sets or reads; protobufjs camelCase names. */
export interface TrainerSpec {
  input?: string[];
  inputFormat?: string;
  modelPrefix?: string;
  modelType?: number;
  vocabSize?: number;
  selfTestSampleSize?: number;
  enableDifferentialPrivacy?: boolean;
  differentialPrivacyNoiseLevel?: number;
  differentialPrivacyClippingThreshold?: number;
  characterCoverage?: number;
  inputSentenceSize?: number;
  shuffleInputSentence?: boolean;
  seedSentencepieceSize?: number;
  shrinkingFactor?: number;
  maxSentenceLength?: number;
  numThreads?: number;
  numSubIterations?: number;
  maxSentencepieceLength?: number;
  splitByUnicodeScript?: boolean;
  splitByNumber?: boolean;
  splitByWhitespace?: boolean;
  treatWhitespaceAsSuffix?: boolean;
  allowWhitespaceOnlyPieces?: boolean;
  splitDigits?: boolean;
  controlSymbols?: string[];
  userDefinedSymbols?: string[];
  requiredChars?: string;
  byteFallback?: boolean;
  vocabularyOutputPieceScore?: boolean;
  hardVocabLimit?: boolean;
  useAllVocab?: boolean;
  unkId?: number;
  bosId?: number;
  eosId?: number;
  padId?: number;
  unkPiece?: string;
  bosPiece?: string;
  eosPiece?: string;
  padPiece?: string;
  unkSurface?: string;
  trainExtremelyLargeCorpus?: boolean;
}

export interface NormalizerSpec {
  name?: string;
  precompiledCharsmap?: Uint8Array;
  addDummyPrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  escapeWhitespaces?: boolean;
  normalizationRuleTsv?: string;
}

export interface ModelProto {
  pieces: ModelPiece[];
  trainerSpec?: TrainerSpec;
  normalizerSpec?: NormalizerSpec;
  denormalizerSpec?: NormalizerSpec;
}

let cachedType: protobuf.Type | null = null;
function modelProtoType(): protobuf.Type {
  cachedType ??= protobuf.parse(SENTENCEPIECE_MODEL_PROTO).root.lookupType('sentencepiece.ModelProto');
  return cachedType;
}

/** Decode `.model` bytes; throws protobufjs's error on bytes that are not a ModelProto. */
export function decodeModelProto(bytes: Uint8Array): ModelProto {
  const type = modelProtoType();
  const obj = type.toObject(type.decode(bytes), { longs: Number, enums: Number, bytes: Uint8Array, defaults: false, arrays: true });
  return obj as ModelProto;
}

export function encodeModelProto(model: ModelProto): Uint8Array {
  const type = modelProtoType();
  return type.encode(type.fromObject(model)).finish();
}

/** The nmt_nfkc table SentencePiece stores in models it trains (Apache-2.0, see assets.ts). */
export function nmtNfkcCharsmap(): Uint8Array {
  return new Uint8Array(Buffer.from(NMT_NFKC_CHARSMAP_BASE64, 'base64'));
}
