/**
 * Fast kernels for the offline (wasm) path. tfjs 4.22's wasm backend runs every transposed or batched
 * matrix product (the whole backward pass, attention) in a scalar loop at ~2 GFLOP/s, on one thread;
 * these replacements run them through the system BLAS on the tensors' wasm memory in place, on all
 * cores (see MANUAL.md "Offline speed" for the measurements). Kernels that cannot take a given input
 * (another dtype, a broadcast they do not handle) hand it to the stock kernel, so results never
 * depend on which path ran beyond float rounding.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, KernelConfig, NamedAttrMap, NamedTensorInfoMap, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { binaryOps, loadNativeKernels, reduceOps, unaryOps, type NativeKernels } from './native.js';

export interface FastKernelsStatus {
  enabled: boolean;
  /** One line for the user when the fast path was wanted but is unavailable. */
  notice?: string;
}

/** What the kernels need of tfjs's wasm backend (BackendWasm in @tensorflow/tfjs-backend-wasm). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: WasmHeapBackend;
  attrs: NamedAttrMap;
}

/** Set GPTMED_FAST_KERNELS=0 to train on the stock kernels (to compare, or to rule the fast path out). */
export const fastKernelsSwitch = 'GPTMED_FAST_KERNELS';

const softmaxGradKernel = 'GptmedSoftmaxGrad';
/**
 * Softmax cross-entropy fused over rows (src/model/loss.ts uses them where registered): inputs logits
 * [rows, cols], targets [rows] int32, weights [rows]; outputs the weighted loss per row and logZ [rows].
 */
export const crossEntropyKernel = 'GptmedCrossEntropy';
/** Its gradient: inputs logits, logZ, targets, rowScale [rows]; output d loss / d logits [rows, cols]. */
export const crossEntropyGradKernel = 'GptmedCrossEntropyGrad';

function f32(backend: WasmHeapBackend, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

function i32(backend: WasmHeapBackend, info: TensorInfo): Int32Array {
  return backend.typedArrayFromHeap(info) as Int32Array;
}

function input(inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const info = inputs[name];
  if (!info) throw new Error(`kernel input "${name}" is missing`);
  return info;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The stock kernel, called where a fast one declines its input. Its setupFunc stays with the
 * replacement so that the stock kernel is ready even when the backend initialises after registration.
 */
function stockKernel(kernelName: string, backendName: string): KernelConfig {
  const config = tf.getKernel(kernelName, backendName);
  if (!config) throw new Error(`tfjs has no ${kernelName} kernel for ${backendName}`);
  return config;
}

/** The product shared by BatchMatMul and _FusedMatMul; null where the inputs need the stock kernel. */
function blasMatMul(
  native: NativeKernels, backend: WasmHeapBackend, a: TensorInfo, b: TensorInfo, bias: TensorInfo | null,
  transposeA: boolean, transposeB: boolean,
): TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) return null;
  const ra = a.shape.length, rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) return null; // the stock kernel words the error
  const batchA = size(a.shape.slice(0, -2)), batchB = size(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  const batchShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (size(batchShape) !== Math.max(batchA, batchB)) return null;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== n)) return null;
  // Allocate first: growing the wasm memory would detach views taken before.
  const out = backend.makeOutput([...batchShape, m, n], 'float32');
  native.gemm(
    f32(backend, a), f32(backend, b), f32(backend, out), bias ? f32(backend, bias) : null,
    Math.max(batchA, batchB), m, n, k, transposeA, transposeB,
    batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n,
  );
  return out;
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

function elementwiseConfigs(native: NativeKernels, backendName: string): KernelConfig[] {
  const unary = unaryOps.map((name, op): KernelConfig => {
    const stock = stockKernel(name, backendName);
    return {
      ...stock,
      kernelFunc: (args) => {
        const { inputs, backend } = args as unknown as KernelArgs;
        const x = input(inputs, 'x');
        if (x.dtype !== 'float32') return stock.kernelFunc(args);
        const out = backend.makeOutput(x.shape, 'float32');
        native.unary(op, f32(backend, x), f32(backend, out), size(x.shape));
        return out;
      },
    };
  });
  const binary = binaryOps.map((name, op): KernelConfig => {
    const stock = stockKernel(name, backendName);
    return {
      ...stock,
      kernelFunc: (args) => {
        const { inputs, backend } = args as unknown as KernelArgs;
        const a = input(inputs, 'a'), b = input(inputs, 'b');
        if (a.dtype !== 'float32' || b.dtype !== 'float32') return stock.kernelFunc(args);
        const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
        const plan = broadcastPlan(outShape, a.shape, b.shape);
        if (!plan) return stock.kernelFunc(args);
        const out = backend.makeOutput(outShape, 'float32');
        native.binary(op, f32(backend, a), f32(backend, b), f32(backend, out), plan.shape, plan.stridesA, plan.stridesB);
        return out;
      },
    };
  });
  const reduce = reduceOps.map((name, op): KernelConfig => {
    const stock = stockKernel(name, backendName);
    return {
      ...stock,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args as unknown as KernelArgs;
        const x = input(inputs, 'x');
        const axisAttr = (name === 'Max' ? attrs.reductionIndices : attrs.axis) as number | number[];
        const axes = tf.util.parseAxisParam(axisAttr, x.shape);
        const plan = x.dtype === 'float32' ? reductionPlan(x.shape, axes) : null;
        if (!plan) return stock.kernelFunc(args);
        const outShape = attrs.keepDims === true
          ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
          : x.shape.filter((_, i) => !axes.includes(i));
        const out = backend.makeOutput(outShape, 'float32');
        const reduceFn = plan.kind === 'inner' ? native.reduceInner : native.reduceOuter;
        reduceFn(op, f32(backend, x), f32(backend, out), plan.rows, plan.cols);
        return out;
      },
    };
  });
  return [...unary, ...binary, ...reduce];
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

function movementConfigs(native: NativeKernels, backendName: string): KernelConfig[] {
  const stockIdentity = stockKernel(tf.Identity, backendName);
  const stockTranspose = stockKernel(tf.Transpose, backendName);
  const stockSplit = stockKernel(tf.SplitV, backendName);
  const stockConcat = stockKernel(tf.Concat, backendName);
  const identityPerm = Int32Array.from([0, 1, 2, 3]);
  return [
    {
      ...stockIdentity,
      kernelFunc: (args) => {
        const { inputs, backend } = args as unknown as KernelArgs;
        const x = input(inputs, 'x');
        if (x.dtype !== 'float32') return stockIdentity.kernelFunc(args);
        const out = backend.makeOutput(x.shape, 'float32');
        native.permute(f32(backend, x), f32(backend, out), Int32Array.from([1, 1, 1, size(x.shape)]), identityPerm);
        return out;
      },
    },
    {
      ...stockTranspose,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args as unknown as KernelArgs;
        const x = input(inputs, 'x');
        const perm = attrs.perm as number[];
        const plan = x.dtype === 'float32' ? permutePlan(x.shape, perm) : null;
        if (!plan) return stockTranspose.kernelFunc(args);
        const out = backend.makeOutput(perm.map((p) => x.shape[p]!), 'float32');
        native.permute(f32(backend, x), f32(backend, out), plan.shape, plan.perm);
        return out;
      },
    },
    {
      ...stockSplit,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args as unknown as KernelArgs;
        const x = input(inputs, 'x');
        const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
        if (x.dtype !== 'float32' || axis !== x.shape.length - 1 || size(x.shape) === 0) return stockSplit.kernelFunc(args);
        const widths = tf.backend_util.prepareSplitSize(x as Tensor, attrs.numOrSizeSplits as number | number[], axis);
        const cols = x.shape[axis]!, rows = size(x.shape) / cols;
        const outs = widths.map((w) => backend.makeOutput([...x.shape.slice(0, -1), w], 'float32'));
        let from = 0;
        outs.forEach((out, i) => {
          native.copyColumns(f32(backend, x), cols, from, f32(backend, out), widths[i]!, 0, rows, widths[i]!);
          from += widths[i]!;
        });
        return outs;
      },
    },
    {
      ...stockConcat,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args as unknown as KernelArgs;
        const parts = Object.values(inputs).filter((t): t is TensorInfo => t !== undefined);
        const first = parts[0];
        if (!first) return stockConcat.kernelFunc(args);
        const rank = first.shape.length;
        const axis = tf.util.parseAxisParam(attrs.axis as number, first.shape)[0]!;
        const lead = first.shape.slice(0, -1);
        const usable = axis === rank - 1 && parts.every(
          (t) => t.dtype === 'float32' && size(t.shape) > 0 && t.shape.length === rank && t.shape.slice(0, -1).every((d, i) => d === lead[i]),
        );
        if (!usable) return stockConcat.kernelFunc(args);
        const cols = parts.reduce((n, t) => n + t.shape[rank - 1]!, 0), rows = size(lead);
        const out = backend.makeOutput([...lead, cols], 'float32');
        let from = 0;
        for (const t of parts) {
          const w = t.shape[rank - 1]!;
          native.copyColumns(f32(backend, t), w, 0, f32(backend, out), cols, from, rows, w);
          from += w;
        }
        return out;
      },
    },
  ];
}

function kernelConfigs(native: NativeKernels, backendName: string): KernelConfig[] {
  const stockBatchMatMul = stockKernel(tf.BatchMatMul, backendName);
  const stockFusedMatMul = stockKernel(tf._FusedMatMul, backendName);
  const stockSoftmax = stockKernel(tf.Softmax, backendName);
  return [
    {
      ...stockBatchMatMul,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args as unknown as KernelArgs;
        return blasMatMul(native, backend, input(inputs, 'a'), input(inputs, 'b'), null, attrs.transposeA === true, attrs.transposeB === true)
          ?? stockBatchMatMul.kernelFunc(args);
      },
    },
    {
      ...stockFusedMatMul,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args as unknown as KernelArgs;
        if (attrs.activation !== 'linear' || inputs.preluActivationWeights) return stockFusedMatMul.kernelFunc(args);
        return blasMatMul(
          native, backend, input(inputs, 'a'), input(inputs, 'b'), inputs.bias ?? null, attrs.transposeA === true, attrs.transposeB === true,
        ) ?? stockFusedMatMul.kernelFunc(args);
      },
    },
    {
      ...stockSoftmax,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args as unknown as KernelArgs;
        const x = input(inputs, 'logits');
        const cols = x.shape[x.shape.length - 1];
        const dim = attrs.dim as number;
        if (x.dtype !== 'float32' || (dim !== -1 && dim !== x.shape.length - 1)) return stockSoftmax.kernelFunc(args);
        const out = backend.makeOutput(x.shape, 'float32');
        native.softmax(f32(backend, x), f32(backend, out), size(x.shape) / cols, cols);
        return out;
      },
    },
    {
      kernelName: softmaxGradKernel,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend } = args as unknown as KernelArgs;
        const dy = input(inputs, 'dy'), y = input(inputs, 'y');
        const cols = y.shape[y.shape.length - 1];
        const out = backend.makeOutput(y.shape, 'float32');
        native.softmaxGrad(f32(backend, dy), f32(backend, y), f32(backend, out), size(y.shape) / cols, cols);
        return out;
      },
    },
    {
      kernelName: crossEntropyKernel,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend } = args as unknown as KernelArgs;
        const logits = input(inputs, 'logits'), targets = input(inputs, 'targets'), weights = input(inputs, 'weights');
        const [rows, cols] = logits.shape as [number, number];
        const loss = backend.makeOutput([rows], 'float32'), logZ = backend.makeOutput([rows], 'float32');
        native.crossEntropy(f32(backend, logits), i32(backend, targets), f32(backend, weights), f32(backend, loss), f32(backend, logZ), rows, cols);
        return [loss, logZ];
      },
    },
    {
      kernelName: crossEntropyGradKernel,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend } = args as unknown as KernelArgs;
        const logits = input(inputs, 'logits'), logZ = input(inputs, 'logZ'), targets = input(inputs, 'targets'), rowScale = input(inputs, 'rowScale');
        const [rows, cols] = logits.shape as [number, number];
        const dx = backend.makeOutput([rows, cols], 'float32');
        native.crossEntropyGrad(f32(backend, logits), f32(backend, logZ), i32(backend, targets), f32(backend, rowScale), f32(backend, dx), rows, cols);
        return dx;
      },
    },
  ];
}

/**
 * Softmax's gradient in one kernel where the current backend has it (over the last axis), else
 * tfjs's own gradient. Gradients are registered for every backend at once, hence the check per call.
 */
function softmaxGradConfig(stock: GradConfig): GradConfig {
  return {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const [y] = saved;
      const dim = (attrs as { dim: number }).dim;
      const backendName = tf.getBackend();
      const single = dy as Tensor;
      if (!tf.getKernel(softmaxGradKernel, backendName) || (dim !== -1 && dim !== y.rank - 1) || single.dtype !== 'float32') {
        return stock.gradFunc(dy, saved, attrs);
      }
      return { logits: () => tf.engine().runKernel(softmaxGradKernel, { dy: single, y }) as Tensor };
    },
  };
}

let registeredFor: string | undefined;

/**
 * Replaces the wasm backend's slow kernels with the native ones, where the addon and a BLAS load.
 * Returns enabled: false with one notice line when they do not (or when GPTMED_FAST_KERNELS=0),
 * and enabled: false without a notice for backends that need no help (tfjs-node) or that these
 * kernels do not serve.
 */
export async function registerFastKernels(backendName: string): Promise<FastKernelsStatus> {
  if (backendName !== 'wasm') return { enabled: false };
  if (process.env[fastKernelsSwitch] === '0') {
    return { enabled: false, notice: `fast CPU kernels off (${fastKernelsSwitch}=0): training on the stock wasm kernels` };
  }
  const load = loadNativeKernels();
  if (!load.kernels) {
    return { enabled: false, notice: `fast CPU kernels unavailable: ${load.reason}; training on the stock wasm kernels (about 10x slower)` };
  }
  if (registeredFor === backendName) return { enabled: true };
  await tf.ready();
  for (const config of [...kernelConfigs(load.kernels, backendName), ...elementwiseConfigs(load.kernels, backendName), ...movementConfigs(load.kernels, backendName)]) {
    if (tf.getKernel(config.kernelName, backendName)) tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel(config);
  }
  tf.registerGradient(softmaxGradConfig(tf.getGradient(tf.Softmax)));
  registeredFor = backendName;
  return { enabled: true };
}
