/**
 * The optional native addon (native/gptmed_native.cc, built by node-gyp at install by
 * scripts/build-native.mjs) and the system BLAS it calls. Either may be missing on a given machine:
 * loadNativeKernels then says why, in words a user can act on, and training uses the plain backend.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The addon's functions. Arrays are read and written in place; sizes are element counts. */
export interface NativeKernels {
  /** Loads the first of these shared libraries that exports cblas_sgemm; returns its name or throws. */
  openBlas(candidates: string[]): string;
  /**
   * c[i] = op(a[i]) · op(b[i]) (+ bias) for i < batch, op = transpose where asked; c is [batch, m, n];
   * a stride of 0 uses the same matrix for every i.
   */
  gemm(
    a: Float32Array, b: Float32Array, c: Float32Array, bias: Float32Array | null,
    batch: number, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean,
    strideA: number, strideB: number,
  ): void;
  /** Softmax over rows of length cols. */
  softmax(x: Float32Array, y: Float32Array, rows: number, cols: number): void;
  /** dx = y · (dy − Σ dy·y) per row: the softmax gradient from its output y. */
  softmaxGrad(dy: Float32Array, y: Float32Array, dx: Float32Array, rows: number, cols: number): void;
  /**
   * Softmax cross-entropy per row, without a [rows, cols] temporary: logZ[r] = log Σ exp(logits[r, ·]),
   * loss[r] = weights[r] · (logZ[r] − logits[r, targets[r]]).
   */
  crossEntropy(logits: Float32Array, targets: Int32Array, weights: Float32Array, loss: Float32Array, logZ: Float32Array, rows: number, cols: number): void;
  /** Its gradient: dx[r, j] = (exp(logits[r, j] − logZ[r]) − [j = targets[r]]) · rowScale[r]. */
  crossEntropyGrad(logits: Float32Array, logZ: Float32Array, targets: Int32Array, rowScale: Float32Array, dx: Float32Array, rows: number, cols: number): void;
  /**
   * y = x with axes reordered (y's axis i is x's axis perm[i]); shape is x's, padded to 4
   * dimensions; perm[3] must be 3 (rows of the last axis move whole).
   */
  permute(x: Float32Array, y: Float32Array, shape: Int32Array, perm: Int32Array): void;
  /** dst[r, dstFrom + j] = src[r, srcFrom + j] for r < rows, j < width. */
  copyColumns(src: Float32Array, srcCols: number, srcFrom: number, dst: Float32Array, dstCols: number, dstFrom: number, rows: number, width: number): void;
  /** y = f(x) element-wise; op indexes unaryOps. */
  unary(op: number, x: Float32Array, y: Float32Array, n: number): void;
  /**
   * out = a (op) b with broadcasting; op indexes binaryOps. shape is out's, collapsed to 4 dimensions;
   * strides are in elements, 0 along broadcast dimensions, and 0 or 1 along the last.
   */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, shape: Int32Array, stridesA: Int32Array, stridesB: Int32Array): void;
  /** out[r] = op(x[r, 0..cols)); op indexes reduceOps. */
  reduceInner(op: number, x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  /** out[c] = op(x[0..rows), c]); op indexes reduceOps. */
  reduceOuter(op: number, x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  /** LayerNorm over rows: y = (x − mean) · rstd · gamma + beta; mean and rstd [rows] kept for the gradient. */
  layerNorm(x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, mean: Float32Array, rstd: Float32Array, rows: number, cols: number, eps: number): void;
  /** Its gradient from x, gamma and the saved mean and rstd: dx, and dgamma, dbeta summed over the rows. */
  layerNormGrad(
    dy: Float32Array, x: Float32Array, gamma: Float32Array, mean: Float32Array, rstd: Float32Array,
    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, rows: number, cols: number,
  ): void;
  /** y = x/2 · (1 + erf(x/√2)) element-wise (y may be x); training's GELU and decoding's. */
  gelu(x: Float32Array, y: Float32Array, n: number): void;
  /** dx = dy · GELU'(x). */
  geluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, n: number): void;
  /**
   * Attention weights from raw scores [rows = .. x queries, keys]: softmax(x · scale) over the keys query
   * i (position past + i) sees, 0 beyond.
   */
  causalSoftmax(x: Float32Array, y: Float32Array, rows: number, queries: number, keys: number, past: number, scale: number): void;
  /** dx = scale · y · (dy − Σ dy·y) per row: causalSoftmax's gradient from its output y. */
  causalSoftmaxGrad(dy: Float32Array, y: Float32Array, dx: Float32Array, rows: number, cols: number, scale: number): void;
  /**
   * One AdamW update of n values into the out arrays; settings = [lr, beta1, beta2, eps, decay factor,
   * gradScale, bias correction 1, bias correction 2] (src/train/optimizer.ts states the formula).
   */
  adamW(
    p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array,
    pOut: Float32Array, mOut: Float32Array, vOut: Float32Array, n: number, settings: Float32Array,
  ): void;
  /** Σ x² over n values, summed in double. */
  sumSquares(x: Float32Array, n: number): number;
  /** src/backend/dropout.ts's dropout over rows of rowSize, one [k0, k1] key pair per row, bit for bit. */
  dropout(x: Float32Array, keys: Int32Array, y: Float32Array, rows: number, rowSize: number, threshold: number, scale: number): void;
  /**
   * y = op(a) · x (+ bias) for a row-major a [rows, cols], op = transpose where asked (x then has rows
   * elements and y cols; else x cols and y rows), on the calling thread: KV-cached decoding's
   * matrix-vector products (src/model/native-decoder.ts). Absent from an addon built before it.
   */
  gemv?(a: Float32Array, x: Float32Array, y: Float32Array, bias: Float32Array | null, rows: number, cols: number, transposeA: boolean): void;
}

/** The tfjs kernels behind the addon's op codes, in the order of native/gptmed_native.cc's enums. */
export const unaryOps = ['Exp', 'Log', 'Neg', 'Sqrt', 'Rsqrt', 'Square', 'Erf', 'Tanh'] as const;
export const binaryOps = ['Add', 'Sub', 'Multiply', 'RealDiv'] as const;
export const reduceOps = ['Sum', 'Max', 'Mean'] as const;

/** Where node-gyp leaves the addon; the same from src/backend (tsx) and dist/backend (built). */
export const addonPath = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'Release', 'gptmed_native.node',
);

/** Shared libraries tried in order: Debian/Ubuntu OpenBLAS (libopenblas0-pthread), then macOS Accelerate. */
const blasCandidates = [
  'libopenblas.so.0',
  'libopenblas.so',
  '/System/Library/Frameworks/Accelerate.framework/Accelerate',
];

export type NativeLoad = { kernels: NativeKernels; blas: string } | { kernels: null; reason: string };

let loaded: NativeLoad | undefined;

/** Loads the addon and a BLAS once per process. */
/** Every function but the optional gemv: an addon built from an older gptmed lacks some until `npm rebuild`. */
const requiredFunctions: ReadonlyArray<Exclude<keyof NativeKernels, 'gemv'>> = [
  'openBlas', 'gemm', 'softmax', 'softmaxGrad', 'crossEntropy', 'crossEntropyGrad', 'permute', 'copyColumns', 'unary', 'binary',
  'reduceInner', 'reduceOuter', 'layerNorm', 'layerNormGrad', 'gelu', 'geluGrad', 'causalSoftmax', 'causalSoftmaxGrad', 'adamW',
  'sumSquares', 'dropout',
];

export function loadNativeKernels(): NativeLoad {
  if (loaded) return loaded;
  let kernels: NativeKernels;
  try {
    kernels = createRequire(import.meta.url)(addonPath) as NativeKernels;
  } catch {
    loaded = {
      kernels: null,
      reason: 'the native addon is not built (install g++ and make, then run `npm rebuild` or `npm install`)',
    };
    return loaded;
  }
  const missing = requiredFunctions.filter((name) => typeof kernels[name] !== 'function');
  if (missing.length > 0) {
    loaded = { kernels: null, reason: `the native addon is out of date (it lacks ${missing.join(', ')}; run \`npm rebuild\`)` };
    return loaded;
  }
  try {
    const blas = kernels.openBlas(blasCandidates);
    loaded = { kernels: withWorkingGemv(kernels), blas };
  } catch {
    loaded = { kernels: null, reason: 'OpenBLAS is not installed (Debian/Ubuntu: apt-get install libopenblas0-pthread)' };
  }
  return loaded;
}

/**
 * The addon without gemv where the BLAS it loaded lacks cblas_sgemv (gemv would throw on every call); its users
 * then take gemm. Called after openBlas(), which gemv needs.
 */
function withWorkingGemv(kernels: NativeKernels): NativeKernels {
  if (!kernels.gemv) return kernels;
  try {
    kernels.gemv(new Float32Array(1), new Float32Array(1), new Float32Array(1), null, 1, 1, false);
    return kernels;
  } catch {
    // The addon's functions are not enumerable own properties: shadow gemv rather than copy the object.
    return Object.create(kernels, { gemv: { value: undefined } }) as NativeKernels;
  }
}
