/**
 * GGUF v3 for llama.cpp's gpt2 architecture: one file with the weights, the hyperparameters, the
 * SentencePiece tokenizer and a chat template, so llama.cpp and everything built on it (llama-cli,
 * llama-server, Ollama, node-llama-cpp) run a gptmed model as it is.
 *
 * File layout (little-endian): magic "GGUF", version 3, tensor count, key/value count, the key/value
 * pairs, one info per tensor (name, dims innermost first, type, offset into the data section), zero
 * padding to general.alignment, then each tensor's data at an offset that is a multiple of the alignment.
 * @huggingface/gguf's serializeGgufMetadata writes everything up to the tensor infos (it pads its
 * output to the alignment we pass, so it gets alignment 1: the tensor infos follow the pairs directly);
 * it has no writer for tensor infos or data, so those few fields are written here.
 *
 * Weights go through toGpt2 (the sqrt(dModel) scale folded, GPT-2's names, Conv1D [in, out] matrices),
 * then get llama.cpp's names; matrices are stored [out, in], i.e. GPT-2's Conv1D transposed. There is
 * no output.weight: llama.cpp's gpt2 graph uses token_embd for the LM head when it is absent (tied).
 */
import * as path from 'node:path';
import { Float16Array } from '@petamoriken/float16';
import { GGUFValueType, serializeGgufMetadata, type GGUFTypedMetadata } from '@huggingface/gguf';
import { UserError } from '../common/errors.js';
import { PieceType } from '../tokenizer/model-proto.js';
import { specialIdsOf } from '../tokenizer/tokenizer.js';
import { toGpt2, type Gpt2Tensor } from './gpt2-layout.js';
import type { ExportDtype, ExportSource } from './source.js';

const alignment = 32;
/** gptmed's LayerNorm epsilon (src/model/gpt.ts). */
const layerNormEps = 1e-5;
/** ggml_type values. */
const GgmlType = { F32: 0, F16: 1 } as const;
/** llama_ftype values for general.file_type: all float32, or float16 but for 1-D tensors. */
const fileTypes: Record<ExportDtype, number> = { f32: 0, f16: 1 };

/**
 * tokenizer.chat_template (Jinja, as llama-server --jinja, LM Studio and node-llama-cpp render it).
 * gptmed knows one exchange: "<s>Q: question\nA: answer</s>" (src/dataset/framing.ts), and its training
 * rows pack exchanges one after another. So each user message becomes "<s>Q: {content}\nA:" (the
 * prompt ends at "A:", no space, as gptmed's prompts do) and each assistant message " {content}</s>",
 * the rest of the pair as gptmed trained on it. The generation prompt is empty: the user turn already
 * ends with "A:". llama.cpp drops the leading <s> it renders, since add_bos_token adds it when it
 * tokenizes. Contents are trimmed (apps hand answers back with the space of their first piece). System
 * and other messages are left out: gptmed models were never trained on any.
 */
export const chatTemplate =
  "{%- for message in messages -%}" +
  "{%- if message['role'] == 'user' -%}{{ bos_token + 'Q: ' + (message['content'] | trim) + '\\nA:' }}" +
  "{%- elif message['role'] == 'assistant' -%}{{ ' ' + (message['content'] | trim) + eos_token }}" +
  '{%- endif -%}' +
  '{%- endfor -%}';

/** GPT-2 (Hugging Face) name -> llama.cpp name, and whether the tensor is a Conv1D matrix to transpose. */
function ggufName(hfName: string): { name: string; transpose: boolean } {
  const simple: Record<string, string> = {
    'transformer.wte.weight': 'token_embd.weight',
    'transformer.wpe.weight': 'position_embd.weight',
    'transformer.ln_f.weight': 'output_norm.weight',
    'transformer.ln_f.bias': 'output_norm.bias',
  };
  if (simple[hfName]) return { name: simple[hfName], transpose: false };
  const m = /^transformer\.h\.(\d+)\.(ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.(weight|bias)$/.exec(hfName);
  if (!m) throw new Error(`ggufName: no llama.cpp name for ${hfName}`);
  const [, block, part, kind] = m;
  const parts: Record<string, string> = {
    ln_1: 'attn_norm',
    'attn.c_attn': 'attn_qkv',
    'attn.c_proj': 'attn_output',
    ln_2: 'ffn_norm',
    'mlp.c_fc': 'ffn_up',
    'mlp.c_proj': 'ffn_down',
  };
  return { name: `blk.${block}.${parts[part]}.${kind}`, transpose: kind === 'weight' && !part.startsWith('ln_') };
}

/** [rows, cols] row-major -> [cols, rows] row-major. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c];
  }
  return out;
}

interface GgufTensor {
  name: string;
  /** ggml order: innermost (contiguous) dimension first. */
  dims: number[];
  type: number;
  bytes: Uint8Array;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * One tensor as llama.cpp reads it. Float16 is for matrices; 1-D tensors (norms, biases) and the
 * position embedding stay float32, as llama.cpp's own converter keeps them.
 */
function ggufTensor(t: Gpt2Tensor, dtype: ExportDtype): GgufTensor {
  const { name, transpose } = ggufName(t.name);
  let data = t.data;
  let shape = t.shape;
  if (transpose) {
    data = transposed(t.data, t.shape[0], t.shape[1]);
    shape = [t.shape[1], t.shape[0]];
  }
  const dims = [...shape].reverse();
  const half = dtype === 'f16' && shape.length === 2 && name !== 'position_embd.weight';
  if (!half) return { name, dims, type: GgmlType.F32, bytes: bytesOf(data) };
  // Float16Array is a Proxy over a Uint16Array; its buffer holds the IEEE half bits (round to nearest even).
  const h = new Float16Array(data);
  return { name, dims, type: GgmlType.F16, bytes: new Uint8Array(h.buffer, h.byteOffset, h.byteLength) };
}

const pad = (n: number): number => Math.ceil(n / alignment) * alignment;

type Entry = GGUFTypedMetadata[string];
const u32 = (value: number): Entry => ({ value, type: GGUFValueType.UINT32 });
const f32 = (value: number): Entry => ({ value, type: GGUFValueType.FLOAT32 });
const bool = (value: boolean): Entry => ({ value, type: GGUFValueType.BOOL });
const str = (value: string): Entry => ({ value, type: GGUFValueType.STRING });
const arr = (value: Array<string | number>, subType: GGUFValueType): Entry => ({ value, type: GGUFValueType.ARRAY, subType });

function metadata(src: ExportSource, dtype: ExportDtype, tensorCount: number): GGUFTypedMetadata {
  const c = src.manifest.modelConfig;
  const tok = src.tokenizer;
  const ids = specialIdsOf(tok);
  if (ids.bos < 0 || ids.eos < 0) {
    throw new UserError(`${src.tokenizerPath}: the tokenizer has no <s>/</s> pieces, which gptmed's prompts and llama.cpp's need; the model cannot be exported to GGUF`);
  }
  if (tok.pieces.length !== c.vocabSize) {
    throw new UserError(`${src.tokenizerPath}: ${tok.pieces.length} pieces, the model has a vocabulary of ${c.vocabSize}; not the tokenizer it was trained with`);
  }
  const runName = path.basename(path.dirname(path.resolve(src.stepDir)));
  const kv: Record<string, Entry> = {
    'general.architecture': str('gpt2'),
    'general.name': str(`${runName} (gptmed, step ${src.manifest.step})`),
    'general.file_type': u32(fileTypes[dtype]),
    'general.alignment': u32(alignment),
    'gpt2.context_length': u32(c.maxSeqLen),
    'gpt2.embedding_length': u32(c.dModel),
    'gpt2.feed_forward_length': u32(c.dFf),
    'gpt2.block_count': u32(c.nLayers),
    'gpt2.attention.head_count': u32(c.nHeads),
    'gpt2.attention.layer_norm_epsilon': f32(layerNormEps),
    'tokenizer.ggml.model': str('llama'),
    'tokenizer.ggml.tokens': arr(tok.pieces.map((p) => p.piece), GGUFValueType.STRING),
    'tokenizer.ggml.scores': arr(tok.pieces.map((p) => p.score ?? 0), GGUFValueType.FLOAT32),
    // ModelProto's piece types are llama.cpp's token types, value for value ("\n" is user-defined, 4).
    'tokenizer.ggml.token_type': arr(tok.pieces.map((p) => p.type ?? PieceType.NORMAL), GGUFValueType.INT32),
    'tokenizer.ggml.bos_token_id': u32(ids.bos),
    'tokenizer.ggml.eos_token_id': u32(ids.eos),
    ...(ids.unk >= 0 ? { 'tokenizer.ggml.unknown_token_id': u32(ids.unk) } : {}),
    ...(ids.pad >= 0 ? { 'tokenizer.ggml.padding_token_id': u32(ids.pad) } : {}),
    'tokenizer.ggml.add_bos_token': bool(true),
    'tokenizer.ggml.add_eos_token': bool(false),
    // SentencePiece's add_dummy_prefix as the model has it (protobuf default true); false for Q&A-mode models.
    'tokenizer.ggml.add_space_prefix': bool(tok.normalizerSpec?.addDummyPrefix ?? true),
    'tokenizer.chat_template': str(chatTemplate),
  };
  return {
    version: { value: 3, type: GGUFValueType.UINT32 },
    tensor_count: { value: BigInt(tensorCount), type: GGUFValueType.UINT64 },
    kv_count: { value: BigInt(Object.keys(kv).length), type: GGUFValueType.UINT64 },
    ...kv,
  } as GGUFTypedMetadata;
}

/** A tensor info: name (u64 length + UTF-8), n_dims u32, dims u64 each, type u32, offset u64. */
function tensorInfo(t: GgufTensor, offset: number): Uint8Array {
  const name = new TextEncoder().encode(t.name);
  const out = new Uint8Array(8 + name.length + 4 + 8 * t.dims.length + 4 + 8);
  const view = new DataView(out.buffer);
  let at = 0;
  view.setBigUint64(at, BigInt(name.length), true);
  out.set(name, (at += 8));
  view.setUint32((at += name.length), t.dims.length, true);
  at += 4;
  for (const d of t.dims) {
    view.setBigUint64(at, BigInt(d), true);
    at += 8;
  }
  view.setUint32(at, t.type, true);
  view.setBigUint64(at + 4, BigInt(offset), true);
  return out;
}

/** The whole .gguf file of a checkpoint: header, metadata (tokenizer, chat template), tensors. */
export function ggufFile(src: ExportSource, dtype: ExportDtype): Uint8Array {
  const tensors = toGpt2(src.manifest.modelConfig, src.weights).map((t) => ggufTensor(t, dtype));
  const header = serializeGgufMetadata(metadata(src, dtype, tensors.length), { alignment: 1 });
  const infos: Uint8Array[] = [];
  const offsets: number[] = [];
  let dataSize = 0;
  for (const t of tensors) {
    offsets.push(dataSize);
    infos.push(tensorInfo(t, dataSize));
    dataSize = pad(dataSize + t.bytes.length);
  }
  const dataStart = pad(header.length + infos.reduce((n, b) => n + b.length, 0));
  const file = new Uint8Array(dataStart + dataSize);
  file.set(header, 0);
  let at = header.length;
  for (const info of infos) {
    file.set(info, at);
    at += info.length;
  }
  tensors.forEach((t, i) => file.set(t.bytes, dataStart + offsets[i]));
  return file;
}
