/**
 * The safetensors format (https://huggingface.co/docs/safetensors), read and written here:
 *   8 bytes      N, the header's length, unsigned 64-bit little-endian
 *   N bytes      a JSON object, UTF-8: for each tensor {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
 *                (byte offsets into the data that follows), and "__metadata__": {string: string}; padded
 *                with spaces so the data starts at a multiple of 8
 *   the data     each tensor's elements, row-major, little-endian, back to back with no gaps
 * No npm package writes it (the registry's lists hold none: the Hugging Face JS libraries read it, and
 * only from the hub), and the format is a dozen lines, so it is written here, with the checks a reader
 * needs for a file that came from elsewhere (offsets inside the file, no gaps or overlaps, sizes that
 * match shapes). Only what gptmed exchanges is converted: F32, F16 and BF16 in, F32 and F16 out.
 */
import { Float16Array, getFloat16 } from '@petamoriken/float16';
import { UserError } from '../common/errors.js';

/** dtype names as safetensors spells them, with their element sizes in bytes. */
const dtypeBytes: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};

/** The float dtypes gptmed reads (each converts to float32 exactly). */
export const readableDtypes = ['F32', 'F16', 'BF16'] as const;
export type ReadableDtype = (typeof readableDtypes)[number];
export type WritableDtype = 'F32' | 'F16';

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** The tensor's bytes, as stored (little-endian). */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A float32 array as little-endian bytes of `dtype` (float16 rounds to nearest, ties to even). */
function encodeFloats(data: Float32Array, dtype: WritableDtype): Uint8Array {
  if (!isLittleEndian) throw new Error('safetensors: writing needs a little-endian machine');
  const typed = dtype === 'F32' ? data : new Float16Array(data);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** The bytes of a safetensors file holding `tensors` (in this order) as `dtype`; `metadata` goes in `__metadata__`. */
export function safetensorsBytes(tensors: readonly TensorToWrite[], dtype: WritableDtype, metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name in header) throw new Error(`safetensors: tensor ${t.name} given twice`);
    if (elementCount(t.shape) !== t.data.length) throw new Error(`safetensors: tensor ${t.name} has ${t.data.length} elements, shape [${t.shape.join(', ')}]`);
    const bytes = encodeFloats(t.data, dtype);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - ((8 + json.length) % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Parse a safetensors file's bytes; `source` names the file in messages (one line each). */
export function readSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  const bad = (what: string): UserError => new UserError(`${source}: not a valid safetensors file (${what})`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) throw bad(`the header length ${headerLength} runs past the end of the file`);
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(headerLength)).toString('utf8'));
  } catch (err) {
    throw bad(`the header is not JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('the header is not a JSON object');
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  const dataLength = bytes.length - dataStart;
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    const dtype = v?.dtype;
    const shape = v?.shape;
    const offsets = v?.data_offsets;
    if (typeof dtype !== 'string' || !(dtype in dtypeBytes)) throw bad(`tensor ${name} has an unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`tensor ${name} has no valid shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw bad(`tensor ${name} has no valid data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) throw bad(`tensor ${name} ends at byte ${end} of ${dataLength} bytes of data; the file is cut short`);
    if (end - begin !== elementCount(shape as number[]) * dtypeBytes[dtype]) throw bad(`tensor ${name}: ${end - begin} bytes for ${dtype} of shape [${shape.join(', ')}]`);
    tensors.set(name, { name, dtype, shape: shape as number[], bytes: bytes.subarray(dataStart + begin, dataStart + end) });
    spans.push([begin, end, name]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== covered) throw bad(begin < covered ? `tensor ${name} overlaps another` : `a gap of ${begin - covered} bytes before tensor ${name}`);
    covered = end;
  }
  if (covered !== dataLength) throw bad(`${dataLength - covered} bytes after the last tensor`);
  return { tensors, metadata };
}

/** float16 bit pattern -> float32, for all 65536 patterns (exact). */
let halfTable: Float32Array | null = null;
function halfToFloat(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    const dv = new DataView(new ArrayBuffer(2));
    for (let bits = 0; bits < 65536; bits++) {
      dv.setUint16(0, bits, true);
      halfTable[bits] = getFloat16(dv, 0, true);
    }
  }
  return halfTable;
}

/** A tensor's elements as float32 (exact for F32, F16 and BF16); null for another dtype. */
export function toFloat32(entry: SafetensorsEntry): Float32Array | null {
  const n = elementCount(entry.shape);
  const view = new DataView(entry.bytes.buffer, entry.bytes.byteOffset, entry.bytes.byteLength);
  const out = new Float32Array(n);
  if (entry.dtype === 'F32') {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (entry.dtype === 'F16') {
    const table = halfToFloat();
    for (let i = 0; i < n; i++) out[i] = table[view.getUint16(2 * i, true)];
  } else if (entry.dtype === 'BF16') {
    // bfloat16 is the top half of a float32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  } else {
    return null;
  }
  return out;
}
