/**
 * Dropout as one kernel, its mask a pure function of (row key, element index): a counter-based hash, so any
 * backend computes the same mask bit for bit without random state, and nothing mask-sized is built in
 * JavaScript and uploaded (the webgpu backend computes it on the GPU; see src/backend/webgpu-kernels.ts).
 *
 * For x with `rows` rows along axis 0 (rowSize = size / rows elements each) and keys [rows, 2] (uint32 bits in
 * an int32 tensor), element e in row r = floor(e / rowSize), at i = e mod rowSize, is
 *   bits = lowbias32(lowbias32((i + k0[r]) mod 2^32) XOR k1[r])
 *   y[e] = bits >= threshold ? x[e] * scale : 0          threshold = floor(rate * 2^32), scale = 1 / (1 - rate)
 * lowbias32 is Chris Wellons' 32-bit integer hash (good avalanche, two multiplies). The gradient is the same
 * kernel applied to dy with the same keys: the mask is recomputed, never stored.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export const dropoutKernel = 'GptmedDropout';

export interface DropoutAttrs extends NamedAttrMap {
  /** Keep an element when its hash bits are at least this (a uint32 as a number). */
  threshold: number;
  /** Multiplier of kept elements: 1 / (1 - rate). */
  scale: number;
}

/** Chris Wellons' lowbias32: a uint32 -> uint32 hash. */
export function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x21f0aaad);
  x ^= x >>> 15;
  x = Math.imul(x, 0x735a2d97);
  x ^= x >>> 15;
  return x >>> 0;
}

/** The hash bits of element i of a row keyed (k0, k1). */
export function maskBits(k0: number, k1: number, i: number): number {
  return lowbias32(lowbias32((i + k0) >>> 0) ^ k1);
}

export function dropoutAttrs(rate: number): DropoutAttrs {
  // The scale as float32, so every backend multiplies by the same number (a GPU cannot hold the double).
  return { threshold: Math.min(0xffffffff, Math.floor(rate * 2 ** 32)), scale: Math.fround(1 / (1 - rate)) };
}

/** FNV-1a over a string's UTF-16 code units, from a given offset basis. */
function fnv1a(text: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A row's key pair from a label (e.g. "seed:site:row"): two independent 32-bit string hashes. */
export function rowKey(label: string): [number, number] {
  return [fnv1a(label, 0x811c9dc5), lowbias32(fnv1a(label, 0x050c5d1f))];
}

/** y = dropout(x) as defined above, on any array: the reference every backend's kernel matches. */
export function applyDropout(x: Float32Array, keys: Int32Array, { threshold, scale }: DropoutAttrs, y: Float32Array = new Float32Array(x.length)): Float32Array {
  const rows = keys.length / 2;
  const rowSize = x.length / rows;
  for (let r = 0; r < rows; r++) {
    const k0 = keys[2 * r]! >>> 0;
    const k1 = keys[2 * r + 1]! >>> 0;
    for (let i = 0, e = r * rowSize; i < rowSize; i++, e++) y[e] = maskBits(k0, k1, i) >= threshold ? x[e]! * scale : 0;
  }
  return y;
}

/**
 * Dropout of x (float32, rows along axis 0) with one key pair per row (keys.length = 2 * rows), at `rate`.
 * Differentiable: the gradient is the same mask applied to dy.
 */
export function dropout(x: tf.Tensor, keys: Int32Array, rate: number): tf.Tensor {
  const rows = x.shape[0] ?? 1;
  if (keys.length !== 2 * rows) throw new Error(`dropout: ${keys.length / 2} row keys for ${rows} rows`);
  return tf.tidy(() => {
    const keyTensor = tf.tensor2d(keys, [rows, 2], 'int32');
    return tf.engine().runKernel(dropoutKernel, { x, keys: keyTensor }, dropoutAttrs(rate)) as tf.Tensor;
  });
}

type KernelArgs = { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: NamedAttrMap };

/**
 * On wasm: the reference on the tensors' memory in the wasm heap, in place (a copy out and back of each mask-sized
 * tensor cost more than the hash: every fresh large buffer is zeroed and paged in, and pressures the GC).
 */
function wasmDropoutKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, keys } = inputs as { x: TensorInfo; keys: TensorInfo };
  const wasm = backend as BackendWasm;
  // Allocate before taking views: growing the heap detaches views taken earlier.
  const y = wasm.makeOutput(x.shape, 'float32');
  const heap = (t: TensorInfo) => wasm.typedArrayFromHeap(t);
  applyDropout(heap(x) as Float32Array, heap(keys) as Int32Array, attrs as DropoutAttrs, heap(y) as Float32Array);
  return y;
}

/** On the other CPU-memory backends (cpu: readSync and write do not copy; tfjs-node: they copy, unavoidably). */
function cpuDropoutKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, keys } = inputs as { x: TensorInfo; keys: TensorInfo };
  const store = backend as KernelBackend;
  const y = applyDropout(store.readSync(x.dataId) as Float32Array, store.readSync(keys.dataId) as Int32Array, attrs as DropoutAttrs);
  return { dataId: store.write(y, x.shape, 'float32'), shape: x.shape, dtype: 'float32' };
}

/** The webgpu backend registers its own (a WGSL program, src/backend/webgpu-kernels.ts). */
const kernels: Array<[string, (args: KernelArgs) => TensorInfo]> = [['wasm', wasmDropoutKernel], ['cpu', cpuDropoutKernel], ['tensorflow', cpuDropoutKernel]];

// Registered on import, as tfjs registers its own kernels: whoever can call dropout() has the kernel.
for (const [backendName, kernelFunc] of kernels) tf.registerKernel({ kernelName: dropoutKernel, backendName, kernelFunc: kernelFunc as tf.KernelFunc });
tf.registerGradient({
  kernelName: dropoutKernel,
  inputsToSave: ['keys'],
  gradFunc: (dy, saved, attrs) => {
    const [keys] = saved as [tf.Tensor];
    return {
      x: () => tf.engine().runKernel(dropoutKernel, { x: dy as tf.Tensor, keys }, attrs) as tf.Tensor,
      keys: () => tf.zerosLike(keys),
    };
  },
});
