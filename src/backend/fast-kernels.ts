/**
 * Fast kernels for the offline (wasm) path. tfjs 4.22's wasm backend runs every transposed or batched
 * matrix product (the whole backward pass, attention) in a scalar loop at ~2 GFLOP/s, on one thread;
 * these replacements run them through the system BLAS on the tensors' wasm memory in place, on all
 * cores (see MANUAL.md "Offline speed" for the measurements). Kernels that cannot take a given input
 * (another dtype, a broadcast they do not handle) hand it to the stock kernel, so results never
 * depend on which path ran beyond float rounding.
 *
 * The file reads top to bottom: the adapter around tfjs-wasm's internals (checked against the tfjs
 * version it was written for), the registration helper (accept or fall back, counted per kernel),
 * the plans that decide what a kernel takes, the kernels, Softmax's gradient, and registration.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, KernelConfig, NamedAttrMap, NamedTensorInfoMap, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { version_wasm, type BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { dropoutKernel, type DropoutAttrs } from './dropout.js';
import { binaryOps, loadNativeKernels, reduceOps, unaryOps, type NativeKernels } from './native.js';

export interface FastKernelsStatus {
  enabled: boolean;
  /** One line for the user when the fast path was wanted but is unavailable. */
  notice?: string;
}

/** Set GPTMED_FAST_KERNELS=0 to train on the stock kernels (to compare, or to rule the fast path out). */
export const fastKernelsSwitch = 'GPTMED_FAST_KERNELS';

/** Softmax's gradient from its output: inputs dy, y (float32, softmax over the last axis); output dx. */
export const softmaxGradKernel = 'GptmedSoftmaxGrad';
/**
 * Softmax cross-entropy fused over rows (src/model/loss.ts uses them where registered): inputs logits
 * [rows, cols], targets [rows] int32, weights [rows]; outputs the weighted loss per row and logZ [rows].
 */
export const crossEntropyKernel = 'GptmedCrossEntropy';
/** Its gradient: inputs logits, logZ, targets, rowScale [rows]; output d loss / d logits [rows, cols]. */
export const crossEntropyGradKernel = 'GptmedCrossEntropyGrad';
/**
 * Fused kernels of the model's element-wise chains (src/model/fused.ts uses them where registered, with
 * gradients registered below). Each is one pass and one saved output where the stock chain makes and keeps
 * several tensors of the activation's size (and their gradients) until the step ends.
 * LayerNorm: inputs x [.., cols], gamma, beta [cols], attr eps; outputs y, mean and rstd [rows].
 */
export const layerNormKernel = 'GptmedLayerNorm';
/** GELU (erf): input x; output y. */
export const geluKernel = 'GptmedGelu';
/** Attention weights: input x, raw scores [.., queries, keys]; attrs scale, past (see NativeKernels.causalSoftmax). */
export const causalSoftmaxKernel = 'GptmedCausalSoftmax';
/** One AdamW update: inputs p, m, v, g; attr settings (NativeKernels.adamW's eight numbers); outputs p, m, v. */
export const adamWKernel = 'GptmedAdamW';
/** Σ x² of a float32 tensor as a float32 scalar (the gradients' global norm). */
export const sumSquaresKernel = 'GptmedSumSquares';
const layerNormGradKernel = 'GptmedLayerNormGrad';
const geluGradKernel = 'GptmedGeluGrad';
const causalSoftmaxGradKernel = 'GptmedCausalSoftmaxGrad';

// ---- The adapter around tfjs-wasm's internals ---------------------------------------------------

/**
 * The tfjs release whose wasm backend internals (BackendWasm.makeOutput and typedArrayFromHeap: how a
 * tensor's memory is laid out on the wasm heap; incRef: its reference count) these kernels were written against. package.json pins
 * tfjs to it; another release turns the fast path off rather than risk writing to the wrong memory.
 */
export const tfjsVersionWrittenFor = '4.22.0';

/** Why the fast kernels cannot use this tfjs's wasm internals, in one clause; null where they can. */
export function wasmInternalsProblem(versions: { core: string; wasm: string }, backend: unknown): string | null {
  if (versions.core !== tfjsVersionWrittenFor || versions.wasm !== tfjsVersionWrittenFor) {
    return `they are written for tfjs ${tfjsVersionWrittenFor}, found @tensorflow/tfjs-core ${versions.core} and @tensorflow/tfjs-backend-wasm ${versions.wasm}`;
  }
  const methods = backend as Partial<Record<'makeOutput' | 'typedArrayFromHeap' | 'incRef', unknown>> | undefined;
  if (typeof methods?.makeOutput !== 'function' || typeof methods.typedArrayFromHeap !== 'function' || typeof methods.incRef !== 'function') {
    return 'the wasm backend lacks makeOutput/typedArrayFromHeap/incRef';
  }
  return null;
}

/** The tensors' memory on the wasm heap, for a backend wasmInternalsProblem accepted. */
class WasmHeap {
  constructor(private readonly backend: BackendWasm) {}

  /** A new float32 tensor. Allocate every output before taking views: growing the heap detaches views taken before. */
  output(shape: number[]): TensorInfo {
    return this.backend.makeOutput(shape, 'float32');
  }

  /** Another reference to x's memory (freed when the last reference is disposed). */
  share(x: TensorInfo): TensorInfo {
    this.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }

  /** A view of a float32 tensor (the kernel's accept checked the dtype). */
  f32(info: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(info) as Float32Array;
  }

  /** A view of an int32 tensor (the kernel's accept checked the dtype). */
  i32(info: TensorInfo): Int32Array {
    return this.backend.typedArrayFromHeap(info) as Int32Array;
  }
}

// ---- The registration helper --------------------------------------------------------------------

/** A fast kernel: which inputs it takes, and how it runs them. */
interface FastKernel<Plan> {
  /** The tfjs kernel it replaces, or (with own) a kernel of its own that has no stock kernel. */
  name: string;
  own?: true;
  /** What it needs from this call, or null where it does not take the inputs. Allocates nothing. */
  accept(inputs: NamedTensorInfoMap, attrs: NamedAttrMap): Plan | null;
  run(heap: WasmHeap, plan: Plan): TensorInfo | TensorInfo[];
}

/** Per kernel name: calls the fast path took, and calls handed to the stock kernel. */
export interface KernelCalls {
  fast: number;
  fallback: number;
}

const calls = new Map<string, KernelCalls>();

function callsOf(kernelName: string): KernelCalls {
  let counts = calls.get(kernelName);
  if (!counts) calls.set(kernelName, (counts = { fast: 0, fallback: 0 }));
  return counts;
}

/** The calls per registered fast kernel since registration or resetFastKernelCalls (a copy). */
export function fastKernelCalls(): Record<string, KernelCalls> {
  return Object.fromEntries([...calls].map(([name, counts]) => [name, { ...counts }]));
}

export function resetFastKernelCalls(): void {
  for (const counts of calls.values()) counts.fast = counts.fallback = 0;
  matMuls.calls = matMuls.flops = matMuls.seconds = 0;
}

/** Matrix products the fast path ran: how many, their floating-point operations, and the seconds they took. */
export interface MatMulStats {
  calls: number;
  flops: number;
  seconds: number;
}

const matMuls: MatMulStats = { calls: 0, flops: 0, seconds: 0 };

/** The products since registration or resetFastKernelCalls (a copy): what share of a step they are, and at what rate. */
export function fastMatMulStats(): MatMulStats {
  return { ...matMuls };
}

/**
 * What the native sgemm (the same pool-parallel gemm the kernels call) gives on one [m, k] x [k, n] product,
 * in GFLOP/s, timed over repeats for at least `seconds`: the machine's rate beside the one a step achieves.
 * null where the addon or a BLAS did not load.
 */
export function sgemmGflops(m: number, k: number, n: number, seconds = 0.3): number | null {
  const { kernels } = loadNativeKernels();
  if (!kernels) return null;
  const a = new Float32Array(m * k).fill(0.5), b = new Float32Array(k * n).fill(0.25), c = new Float32Array(m * n);
  kernels.gemm(a, b, c, null, 1, m, n, k, false, false, 0, 0); // warm-up: threads and caches
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000 || runs < 3) {
    kernels.gemm(a, b, c, null, 1, m, n, k, false, false, 0, 0);
    runs++;
  }
  return (2 * m * n * k * runs) / ((performance.now() - start) / 1000) / 1e9;
}

function stockKernel(kernelName: string, backendName: string): KernelConfig {
  const config = tf.getKernel(kernelName, backendName);
  if (!config) throw new Error(`tfjs has no ${kernelName} kernel for ${backendName}`);
  return config;
}

/**
 * The tfjs kernel config for a fast kernel: it runs where the kernel accepts the call, else the stock
 * kernel does. The stock kernel's setupFunc stays with the replacement so that the stock kernel is
 * ready even when the backend initialises after registration.
 */
function kernelConfig<Plan>(kernel: FastKernel<Plan>, backendName: string): KernelConfig {
  const stock = kernel.own ? undefined : stockKernel(kernel.name, backendName);
  const counts = callsOf(kernel.name);
  return {
    ...stock,
    kernelName: kernel.name,
    backendName,
    kernelFunc: (args) => {
      const plan = kernel.accept(args.inputs, args.attrs ?? {});
      if (plan !== null) {
        counts.fast++;
        return kernel.run(new WasmHeap(args.backend as BackendWasm), plan);
      }
      if (!stock) throw new Error(`${kernel.name}: inputs of an unexpected dtype or shape`);
      counts.fallback++;
      return stock.kernelFunc(args);
    },
  };
}

function input(inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const info = inputs[name];
  if (!info) throw new Error(`kernel input "${name}" is missing`);
  return info;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function allFloat32(...infos: Array<TensorInfo | null>): boolean {
  return infos.every((t) => t === null || t.dtype === 'float32');
}

// ---- Plans: what a kernel takes -----------------------------------------------------------------

interface MatMulPlan {
  a: TensorInfo; b: TensorInfo; bias: TensorInfo | null;
  transposeA: boolean; transposeB: boolean;
  outShape: number[]; batch: number; m: number; n: number; k: number; strideA: number; strideB: number;
}

/** The product shared by BatchMatMul and _FusedMatMul; null where the inputs need the stock kernel. */
function matMulPlan(a: TensorInfo, b: TensorInfo, bias: TensorInfo | null, attrs: NamedAttrMap): MatMulPlan | null {
  if (!allFloat32(a, b, bias)) return null;
  const transposeA = attrs.transposeA === true, transposeB = attrs.transposeB === true;
  const ra = a.shape.length, rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== kb) return null; // the stock kernel words the error
  const batchA = size(a.shape.slice(0, -2)), batchB = size(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  const batchShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (size(batchShape) !== Math.max(batchA, batchB)) return null;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== n)) return null;
  return {
    a, b, bias, transposeA, transposeB, outShape: [...batchShape, m, n], batch: Math.max(batchA, batchB), m, n, k,
    strideA: batchA === 1 ? 0 : m * k, strideB: batchB === 1 ? 0 : k * n,
  };
}

/**
 * Strides of a and b over the broadcast output shape, with runs of dimensions that both walk
 * contiguously (or both repeat) merged, padded to 4 dimensions; null where more remain.
 */
export function broadcastPlan(
  outShape: readonly number[], aShape: readonly number[], bShape: readonly number[],
): { shape: Int32Array; stridesA: Int32Array; stridesB: Int32Array } | null {
  const rank = outShape.length;
  const stridesOf = (shape: readonly number[]): number[] => {
    const padded = [...Array<number>(rank - shape.length).fill(1), ...shape];
    const strides = new Array<number>(rank).fill(0);
    let step = 1;
    for (let d = rank - 1; d >= 0; d--) {
      strides[d] = padded[d] === 1 ? 0 : step;
      step *= padded[d]!;
    }
    return strides;
  };
  const sa = stridesOf(aShape), sb = stridesOf(bShape);
  // Merge from the innermost dimension outwards.
  const dims: Array<{ size: number; a: number; b: number }> = [];
  for (let d = rank - 1; d >= 0; d--) {
    const size = outShape[d]!;
    if (size === 1) continue;
    const last = dims[dims.length - 1];
    if (last && sa[d] === last.a * last.size && sb[d] === last.b * last.size) last.size *= size;
    else dims.push({ size, a: sa[d]!, b: sb[d]! });
  }
  if (dims.length > 4) return null;
  while (dims.length < 4) dims.push({ size: 1, a: 0, b: 0 });
  dims.reverse();
  if (dims[3]!.a > 1 || dims[3]!.b > 1) return null;
  return {
    shape: Int32Array.from(dims, (d) => d.size),
    stridesA: Int32Array.from(dims, (d) => d.a),
    stridesB: Int32Array.from(dims, (d) => d.b),
  };
}

/** Reduced axes as rows x cols of a row-major array: 'inner' reduces trailing axes, 'outer' leading ones. */
function reductionPlan(shape: readonly number[], axes: number[]): { kind: 'inner' | 'outer'; rows: number; cols: number } | null {
  const rank = shape.length;
  const sorted = [...new Set(axes)].sort((x, y) => x - y);
  if (sorted.length === 0 || sorted.length === rank && rank === 0) return null;
  const k = sorted.length;
  if (sorted.every((axis, i) => axis === rank - k + i)) {
    return { kind: 'inner', rows: size(shape.slice(0, rank - k)), cols: size(shape.slice(rank - k)) };
  }
  if (sorted.every((axis, i) => axis === i)) return { kind: 'outer', rows: size(shape.slice(0, k)), cols: size(shape.slice(k)) };
  return null;
}

/** Transposes that keep the last axis (attention's head split and merge), as a 4-D permute. */
function permutePlan(shape: readonly number[], perm: readonly number[]): { shape: Int32Array; perm: Int32Array } | null {
  const rank = shape.length;
  if (rank === 0 || rank > 4 || perm[rank - 1] !== rank - 1) return null;
  const pad = 4 - rank;
  return {
    shape: Int32Array.from([...Array<number>(pad).fill(1), ...shape]),
    perm: Int32Array.from([...Array.from({ length: pad }, (_, i) => i), ...perm.map((p) => p + pad)]),
  };
}

/** The last axis of x, if axis names it (as a possibly negative index): rows x cols. */
function lastAxisRows(x: TensorInfo, axis: number): { rows: number; cols: number } | null {
  const rank = x.shape.length;
  if (rank === 0 || (axis !== -1 && axis !== rank - 1)) return null;
  const cols = x.shape[rank - 1]!;
  return { rows: cols === 0 ? 0 : size(x.shape) / cols, cols };
}

// ---- The kernels --------------------------------------------------------------------------------

function unaryKernel(native: NativeKernels, name: string, op: number): FastKernel<TensorInfo> {
  return {
    name,
    accept: (inputs) => { const x = input(inputs, 'x'); return x.dtype === 'float32' ? x : null; },
    run: (heap, x) => {
      const out = heap.output(x.shape);
      native.unary(op, heap.f32(x), heap.f32(out), size(x.shape));
      return out;
    },
  };
}

interface BinaryPlan {
  a: TensorInfo; b: TensorInfo; outShape: number[];
  plan: NonNullable<ReturnType<typeof broadcastPlan>>;
}

function binaryKernel(native: NativeKernels, name: string, op: number): FastKernel<BinaryPlan> {
  return {
    name,
    accept: (inputs) => {
      const a = input(inputs, 'a'), b = input(inputs, 'b');
      if (!allFloat32(a, b)) return null;
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const plan = broadcastPlan(outShape, a.shape, b.shape);
      return plan && { a, b, outShape, plan };
    },
    run: (heap, { a, b, outShape, plan }) => {
      const out = heap.output(outShape);
      native.binary(op, heap.f32(a), heap.f32(b), heap.f32(out), plan.shape, plan.stridesA, plan.stridesB);
      return out;
    },
  };
}

function reduceKernel(native: NativeKernels, name: string, op: number): FastKernel<{ x: TensorInfo; outShape: number[] } & NonNullable<ReturnType<typeof reductionPlan>>> {
  return {
    name,
    accept: (inputs, attrs) => {
      const x = input(inputs, 'x');
      const axes = tf.util.parseAxisParam((name === 'Max' ? attrs.reductionIndices : attrs.axis) as number | number[], x.shape);
      const plan = x.dtype === 'float32' ? reductionPlan(x.shape, axes) : null;
      if (!plan) return null;
      const outShape = attrs.keepDims === true
        ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
        : x.shape.filter((_, i) => !axes.includes(i));
      return { x, outShape, ...plan };
    },
    run: (heap, { x, outShape, kind, rows, cols }) => {
      const out = heap.output(outShape);
      (kind === 'inner' ? native.reduceInner : native.reduceOuter)(op, heap.f32(x), heap.f32(out), rows, cols);
      return out;
    },
  };
}

/**
 * Identity as a second reference to the same memory, as tfjs's cpu backend does (the wasm backend copies).
 * tfjs clones every tensor a gradient saves, so copying doubled the memory of all saved activations; sharing
 * is safe because tfjs tensors are never written in place (Variable.assign swaps memory, it does not write).
 */
function identityKernel(): FastKernel<TensorInfo> {
  return {
    name: tf.Identity,
    accept: (inputs) => { const x = input(inputs, 'x'); return x.dtype === 'string' ? null : x; },
    run: (heap, x) => heap.share(x),
  };
}

function transposeKernel(native: NativeKernels): FastKernel<{ x: TensorInfo; outShape: number[] } & NonNullable<ReturnType<typeof permutePlan>>> {
  return {
    name: tf.Transpose,
    accept: (inputs, attrs) => {
      const x = input(inputs, 'x'), perm = attrs.perm as number[];
      const plan = x.dtype === 'float32' ? permutePlan(x.shape, perm) : null;
      return plan && { x, outShape: perm.map((p) => x.shape[p]!), ...plan };
    },
    run: (heap, { x, outShape, shape, perm }) => {
      const out = heap.output(outShape);
      native.permute(heap.f32(x), heap.f32(out), shape, perm);
      return out;
    },
  };
}

/** SplitV along the last axis (attention's q, k, v). */
function splitKernel(native: NativeKernels): FastKernel<{ x: TensorInfo; widths: number[] }> {
  return {
    name: tf.SplitV,
    accept: (inputs, attrs) => {
      const x = input(inputs, 'x');
      const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
      if (x.dtype !== 'float32' || axis !== x.shape.length - 1 || size(x.shape) === 0) return null;
      return { x, widths: tf.backend_util.prepareSplitSize(x as Tensor, attrs.numOrSizeSplits as number | number[], axis) };
    },
    run: (heap, { x, widths }) => {
      const cols = x.shape[x.shape.length - 1]!, rows = size(x.shape) / cols;
      const outs = widths.map((w) => heap.output([...x.shape.slice(0, -1), w]));
      let from = 0;
      outs.forEach((out, i) => {
        native.copyColumns(heap.f32(x), cols, from, heap.f32(out), widths[i]!, 0, rows, widths[i]!);
        from += widths[i]!;
      });
      return outs;
    },
  };
}

/** Concat along the last axis of tensors that agree on the others. */
function concatKernel(native: NativeKernels): FastKernel<TensorInfo[]> {
  return {
    name: tf.Concat,
    accept: (inputs, attrs) => {
      const parts = Object.values(inputs).filter((t): t is TensorInfo => t !== undefined);
      const first = parts[0];
      if (!first) return null;
      const rank = first.shape.length, lead = first.shape.slice(0, -1);
      const axis = tf.util.parseAxisParam(attrs.axis as number, first.shape)[0]!;
      const usable = axis === rank - 1 && parts.every(
        (t) => t.dtype === 'float32' && size(t.shape) > 0 && t.shape.length === rank && t.shape.slice(0, -1).every((d, i) => d === lead[i]),
      );
      return usable ? parts : null;
    },
    run: (heap, parts) => {
      const lead = parts[0]!.shape.slice(0, -1), rank = lead.length + 1;
      const cols = parts.reduce((n, t) => n + t.shape[rank - 1]!, 0), rows = size(lead);
      const out = heap.output([...lead, cols]);
      let from = 0;
      for (const t of parts) {
        const w = t.shape[rank - 1]!;
        native.copyColumns(heap.f32(t), w, 0, heap.f32(out), cols, from, rows, w);
        from += w;
      }
      return out;
    },
  };
}

function runMatMul(native: NativeKernels, heap: WasmHeap, p: MatMulPlan): TensorInfo {
  const out = heap.output(p.outShape);
  const start = performance.now();
  native.gemm(
    heap.f32(p.a), heap.f32(p.b), heap.f32(out), p.bias ? heap.f32(p.bias) : null,
    p.batch, p.m, p.n, p.k, p.transposeA, p.transposeB, p.strideA, p.strideB,
  );
  matMuls.seconds += (performance.now() - start) / 1000;
  matMuls.calls++;
  matMuls.flops += 2 * p.batch * p.m * p.n * p.k;
  return out;
}

function batchMatMulKernel(native: NativeKernels): FastKernel<MatMulPlan> {
  return {
    name: tf.BatchMatMul,
    accept: (inputs, attrs) => matMulPlan(input(inputs, 'a'), input(inputs, 'b'), null, attrs),
    run: (heap, plan) => runMatMul(native, heap, plan),
  };
}

/** _FusedMatMul with a bias or none, without an activation (the model's linear layers). */
function fusedMatMulKernel(native: NativeKernels): FastKernel<MatMulPlan> {
  return {
    name: tf._FusedMatMul,
    accept: (inputs, attrs) => attrs.activation !== 'linear' || inputs.preluActivationWeights
      ? null
      : matMulPlan(input(inputs, 'a'), input(inputs, 'b'), inputs.bias ?? null, attrs),
    run: (heap, plan) => runMatMul(native, heap, plan),
  };
}

function softmaxKernel(native: NativeKernels): FastKernel<{ x: TensorInfo; rows: number; cols: number }> {
  return {
    name: tf.Softmax,
    accept: (inputs, attrs) => {
      const x = input(inputs, 'logits');
      const rows = x.dtype === 'float32' ? lastAxisRows(x, attrs.dim as number) : null;
      return rows && { x, ...rows };
    },
    run: (heap, { x, rows, cols }) => {
      const out = heap.output(x.shape);
      native.softmax(heap.f32(x), heap.f32(out), rows, cols);
      return out;
    },
  };
}

function softmaxGradKernelOf(native: NativeKernels): FastKernel<{ dy: TensorInfo; y: TensorInfo; rows: number; cols: number }> {
  return {
    name: softmaxGradKernel,
    own: true,
    accept: (inputs) => {
      const dy = input(inputs, 'dy'), y = input(inputs, 'y');
      const rows = allFloat32(dy, y) ? lastAxisRows(y, -1) : null;
      return rows && { dy, y, ...rows };
    },
    run: (heap, { dy, y, rows, cols }) => {
      const out = heap.output(y.shape);
      native.softmaxGrad(heap.f32(dy), heap.f32(y), heap.f32(out), rows, cols);
      return out;
    },
  };
}

type CrossEntropyInputs = Record<'logits' | 'targets' | 'weights', TensorInfo> & { rows: number; cols: number };

function crossEntropyKernelOf(native: NativeKernels): FastKernel<CrossEntropyInputs> {
  return {
    name: crossEntropyKernel,
    own: true,
    accept: (inputs) => {
      const logits = input(inputs, 'logits'), targets = input(inputs, 'targets'), weights = input(inputs, 'weights');
      const [rows, cols] = logits.shape as [number, number];
      return allFloat32(logits, weights) && targets.dtype === 'int32' ? { logits, targets, weights, rows, cols } : null;
    },
    run: (heap, { logits, targets, weights, rows, cols }) => {
      const loss = heap.output([rows]), logZ = heap.output([rows]);
      native.crossEntropy(heap.f32(logits), heap.i32(targets), heap.f32(weights), heap.f32(loss), heap.f32(logZ), rows, cols);
      return [loss, logZ];
    },
  };
}

type CrossEntropyGradInputs = Record<'logits' | 'logZ' | 'targets' | 'rowScale', TensorInfo> & { rows: number; cols: number };

function crossEntropyGradKernelOf(native: NativeKernels): FastKernel<CrossEntropyGradInputs> {
  return {
    name: crossEntropyGradKernel,
    own: true,
    accept: (inputs) => {
      const logits = input(inputs, 'logits'), logZ = input(inputs, 'logZ'), targets = input(inputs, 'targets'), rowScale = input(inputs, 'rowScale');
      const [rows, cols] = logits.shape as [number, number];
      return allFloat32(logits, logZ, rowScale) && targets.dtype === 'int32' ? { logits, logZ, targets, rowScale, rows, cols } : null;
    },
    run: (heap, { logits, logZ, targets, rowScale, rows, cols }) => {
      const dx = heap.output([rows, cols]);
      native.crossEntropyGrad(heap.f32(logits), heap.f32(logZ), heap.i32(targets), heap.f32(rowScale), heap.f32(dx), rows, cols);
      return dx;
    },
  };
}

// ---- The fused training kernels (own kernels; the model and the optimizer call them by name) --------

/** What an own kernel's run gets: a float32 tensor by input name, and the call's attributes. */
interface OwnCall {
  t: (name: string) => TensorInfo;
  attrs: NamedAttrMap;
}

/** An own kernel over float32 inputs only (the callers check that it is registered, then send float32). */
function ownKernel(name: string, run: (heap: WasmHeap, call: OwnCall) => TensorInfo | TensorInfo[]): FastKernel<OwnCall> {
  return {
    name,
    own: true,
    accept: (inputs, attrs) => (allFloat32(...Object.values(inputs).map((t) => t ?? null)) ? { t: (n) => input(inputs, n), attrs } : null),
    run,
  };
}

/** x as rows of its last axis. */
function rowsOf(x: TensorInfo): { rows: number; cols: number } {
  return lastAxisRows(x, -1) ?? { rows: 0, cols: 0 };
}

function layerNormKernels(native: NativeKernels): Array<FastKernel<OwnCall>> {
  const forward = ownKernel(layerNormKernel, (heap, { t, attrs }) => {
    const x = t('x'), { rows, cols } = rowsOf(x);
    const [y, mean, rstd] = [heap.output(x.shape), heap.output([rows]), heap.output([rows])];
    native.layerNorm(heap.f32(x), heap.f32(t('gamma')), heap.f32(t('beta')), heap.f32(y), heap.f32(mean), heap.f32(rstd), rows, cols, attrs.eps as number);
    return [y, mean, rstd];
  });
  const backward = ownKernel(layerNormGradKernel, (heap, { t }) => {
    const x = t('x'), gamma = t('gamma'), { rows, cols } = rowsOf(x);
    const [dx, dgamma, dbeta] = [heap.output(x.shape), heap.output(gamma.shape), heap.output(gamma.shape)];
    native.layerNormGrad(
      heap.f32(t('dy')), heap.f32(x), heap.f32(gamma), heap.f32(t('mean')), heap.f32(t('rstd')),
      heap.f32(dx), heap.f32(dgamma), heap.f32(dbeta), rows, cols,
    );
    return [dx, dgamma, dbeta];
  });
  return [forward, backward];
}

function geluKernels(native: NativeKernels): Array<FastKernel<OwnCall>> {
  const forward = ownKernel(geluKernel, (heap, { t }) => {
    const x = t('x'), y = heap.output(x.shape);
    native.gelu(heap.f32(x), heap.f32(y), size(x.shape));
    return y;
  });
  const backward = ownKernel(geluGradKernel, (heap, { t }) => {
    const x = t('x'), dx = heap.output(x.shape);
    native.geluGrad(heap.f32(t('dy')), heap.f32(x), heap.f32(dx), size(x.shape));
    return dx;
  });
  return [forward, backward];
}

function causalSoftmaxKernels(native: NativeKernels): Array<FastKernel<OwnCall>> {
  const forward = ownKernel(causalSoftmaxKernel, (heap, { t, attrs }) => {
    const x = t('x'), { rows, cols } = rowsOf(x), y = heap.output(x.shape);
    native.causalSoftmax(heap.f32(x), heap.f32(y), rows, x.shape[x.shape.length - 2]!, cols, (attrs.past as number) ?? 0, attrs.scale as number);
    return y;
  });
  const backward = ownKernel(causalSoftmaxGradKernel, (heap, { t, attrs }) => {
    const y = t('y'), { rows, cols } = rowsOf(y), dx = heap.output(y.shape);
    native.causalSoftmaxGrad(heap.f32(t('dy')), heap.f32(y), heap.f32(dx), rows, cols, attrs.scale as number);
    return dx;
  });
  return [forward, backward];
}

function optimizerKernels(native: NativeKernels): Array<FastKernel<OwnCall>> {
  const adamW = ownKernel(adamWKernel, (heap, { t, attrs }) => {
    const p = t('p'), outs = [heap.output(p.shape), heap.output(p.shape), heap.output(p.shape)];
    const [po, mo, vo] = outs.map((out) => heap.f32(out)) as [Float32Array, Float32Array, Float32Array];
    native.adamW(heap.f32(p), heap.f32(t('m')), heap.f32(t('v')), heap.f32(t('g')), po, mo, vo, size(p.shape), Float32Array.from(attrs.settings as number[]));
    return outs;
  });
  const sumSquares = ownKernel(sumSquaresKernel, (heap, { t }) => {
    const x = t('x'), out = heap.output([]);
    heap.f32(out)[0] = native.sumSquares(heap.f32(x), size(x.shape));
    return out;
  });
  return [adamW, sumSquares];
}

/** src/backend/dropout.ts's kernel on all cores (its own wasm kernel, kept as the fallback, runs on one thread in JavaScript). */
function dropoutKernelOf(native: NativeKernels): FastKernel<{ x: TensorInfo; keys: TensorInfo; rows: number; threshold: number; scale: number }> {
  return {
    name: dropoutKernel,
    accept: (inputs, attrs) => {
      const x = input(inputs, 'x'), keys = input(inputs, 'keys');
      const rows = x.shape[0] ?? 1;
      if (x.dtype !== 'float32' || keys.dtype !== 'int32' || size(keys.shape) !== 2 * rows) return null;
      const { threshold, scale } = attrs as DropoutAttrs;
      return { x, keys, rows, threshold, scale };
    },
    run: (heap, { x, keys, rows, threshold, scale }) => {
      const y = heap.output(x.shape);
      native.dropout(heap.f32(x), heap.i32(keys), heap.f32(y), rows, rows === 0 ? 0 : size(x.shape) / rows, threshold, scale);
      return y;
    },
  };
}

function kernelConfigs(native: NativeKernels, backendName: string): KernelConfig[] {
  const on = <Plan>(kernel: FastKernel<Plan>): KernelConfig => kernelConfig(kernel, backendName);
  return [
    ...unaryOps.map((name, op) => on(unaryKernel(native, name, op))),
    ...binaryOps.map((name, op) => on(binaryKernel(native, name, op))),
    ...reduceOps.map((name, op) => on(reduceKernel(native, name, op))),
    on(identityKernel()), on(transposeKernel(native)), on(splitKernel(native)), on(concatKernel(native)),
    on(batchMatMulKernel(native)), on(fusedMatMulKernel(native)), on(softmaxKernel(native)),
    on(softmaxGradKernelOf(native)), on(crossEntropyKernelOf(native)), on(crossEntropyGradKernelOf(native)), on(dropoutKernelOf(native)),
    ...[...layerNormKernels(native), ...geluKernels(native), ...causalSoftmaxKernels(native), ...optimizerKernels(native)].map(on),
  ];
}

// ---- Softmax's gradient -------------------------------------------------------------------------

/**
 * Softmax's gradient through GptmedSoftmaxGrad on the wasm backend. tfjs keeps one gradient per kernel
 * name for all backends (registerGradient takes no backend), so this replacement is seen everywhere:
 * on any other backend it calls tfjs's own gradient, giving the stock result, and on wasm it does so
 * for inputs GptmedSoftmaxGrad does not take (counted as its fallbacks).
 */
function softmaxGradient(stock: GradConfig): GradConfig {
  return {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== 'wasm' || !tf.getKernel(softmaxGradKernel, 'wasm')) return stock.gradFunc(dy, saved, attrs);
      const [y] = saved;
      const single = dy as Tensor;
      if (!y || single.dtype !== 'float32' || !lastAxisRows(y, (attrs as { dim: number }).dim)) {
        callsOf(softmaxGradKernel).fallback++;
        return stock.gradFunc(dy, saved, attrs);
      }
      return { logits: () => tf.engine().runKernel(softmaxGradKernel, { dy: single, y }) as Tensor };
    },
  };
}

// ---- The fused kernels' gradients ------------------------------------------------------------------

/**
 * Gradients of the fused kernels, each one native pass from what its forward saved. Computed when the tape
 * asks (each input's closure returns its part), as tfjs's multi-input gradients are.
 */
const fusedGradients: GradConfig[] = [
  {
    kernelName: layerNormKernel,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      const [x, gamma, mean, rstd] = saved;
      const dy = (dys as Tensor[])[0]!;
      const [dx, dgamma, dbeta] = tf.engine().runKernel(layerNormGradKernel, { dy, x: x!, gamma: gamma!, mean: mean!, rstd: rstd! }) as Tensor[];
      return { x: () => dx!, gamma: () => dgamma!, beta: () => dbeta! };
    },
  },
  {
    kernelName: geluKernel,
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.engine().runKernel(geluGradKernel, { dy: dy as Tensor, x: x! }) as Tensor }),
  },
  {
    kernelName: causalSoftmaxKernel,
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => ({ x: () => tf.engine().runKernel(causalSoftmaxGradKernel, { dy: dy as Tensor, y: y! }, attrs as NamedAttrMap) as Tensor }),
  },
];

// ---- Registration -------------------------------------------------------------------------------

let registeredFor: string | undefined;

/**
 * Replaces the wasm backend's slow kernels with the native ones, where the addon and a BLAS load and
 * tfjs is the release they were written for. Returns enabled: false with one notice line when they do
 * not (or when GPTMED_FAST_KERNELS=0), and enabled: false without a notice for backends that need no
 * help (tfjs-node) or that these kernels do not serve.
 */
export async function registerFastKernels(backendName: string): Promise<FastKernelsStatus> {
  if (backendName !== 'wasm') return { enabled: false };
  const stockLine = 'training on the stock wasm kernels';
  if (process.env[fastKernelsSwitch] === '0') return { enabled: false, notice: `fast CPU kernels off (${fastKernelsSwitch}=0): ${stockLine}` };
  const load = loadNativeKernels();
  if (!load.kernels) return { enabled: false, notice: `fast CPU kernels unavailable: ${load.reason}; ${stockLine} (about 10x slower)` };
  if (registeredFor === backendName) return { enabled: true };
  await tf.ready();
  const problem = wasmInternalsProblem({ core: tf.version_core, wasm: version_wasm }, tf.findBackend(backendName));
  if (problem) return { enabled: false, notice: `fast CPU kernels off: ${problem}; ${stockLine} (about 10x slower)` };
  for (const config of kernelConfigs(load.kernels, backendName)) {
    if (tf.getKernel(config.kernelName, backendName)) tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel(config);
  }
  const stockGradient = tf.getGradient(tf.Softmax);
  if (stockGradient) tf.registerGradient(softmaxGradient(stockGradient));
  for (const gradient of fusedGradients) tf.registerGradient(gradient);
  registeredFor = backendName;
  return { enabled: true };
}
