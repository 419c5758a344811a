/**
 * Kernels for the webgpu backend (WGSL programs run through tfjs-backend-webgpu's runWebGPUProgram). Imported
 * only once that optional package loaded (index.ts activate).
 *
 * GptmedDropout (src/backend/dropout.ts): the counter-hash mask computed on the GPU from the row keys alone, so
 * nothing mask-sized is built or uploaded; bit for bit the reference (test/backend/webgpu-dropout.test.ts).
 *
 * Determinism: tfjs's webgpu backend sums with float atomics in two places, so the order of additions (and the
 * rounding) changes from run to run, and a resumed run would not repeat the uninterrupted one bit for bit:
 *   - UnsortedSegmentSum (the gradient of tf.gather: the token embedding's): replaced by a program that sums each
 *     output element's rows in index order, as the wasm kernel does;
 *   - BatchMatMul/_FusedMatMul's split-K program (few output tiles, K >= 2000: weight gradients of small
 *     models): such products run on its small-output program instead.
 * Limits: tfjs's AddN binds every input as a storage buffer, and more than the device allows per shader stage (8
 * by default) makes an invalid pipeline whose results are silently wrong (the global gradient norm sums one
 * tensor per parameter): AddN is run in chunks that fit, summed left to right as one program would.
 *
 * Uploads: tfjs's Mean and Sum gradients multiply dy by ones(x.shape), an array built in JavaScript and uploaded
 * (for LayerNorm's two means, two activation-sized uploads per block per step); on webgpu they broadcast dy on
 * the GPU instead, the same values bit for bit (x * 1 is exact). What a step still uploads: its batch, the causal
 * mask (src/model/fused.ts's stock path builds it per forward call) and scalars.
 *
 * Failures: work the device rejects (an invalid program, an allocation past GPU memory) is an event, not an
 * exception, and what depends on it is garbage; the first read of values after one throws a one-line error.
 *
 * Everything else the model, the loss and AdamW use runs on tfjs's own webgpu kernels (no CPU fallback): the
 * fused cross-entropy and softmax gradient of the wasm path are CPU kernels, and on webgpu the composite
 * versions (src/model/loss.ts, tfjs's Softmax gradient) run on the GPU.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { webgpu_util, type WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { UserError } from '../common/errors.js';
import { dropoutKernel as dropoutKernelName, type DropoutAttrs } from './dropout.js';
import { countRejectedPrograms, takeRejection } from './webgpu.js';

type Program = Parameters<WebGPUBackend['runWebGPUProgram']>[0];
type Uniforms = Parameters<WebGPUBackend['runWebGPUProgram']>[3];

const backendName = 'webgpu';
const workgroupSize: [number, number, number] = [64, 1, 1];

/** A program over every element of outShape, one invocation each: `main(index)` sets output `index`. */
function elementwiseProgram(shaderKey: string, outShape: number[], variableNames: string[], uniforms: string, body: string): Program {
  const dispatchLayout = webgpu_util.flatDispatchLayout(outShape);
  return {
    shaderKey, outputShape: outShape, variableNames, uniforms, size: true, workgroupSize, dispatchLayout,
    dispatch: webgpu_util.computeDispatch(dispatchLayout, outShape, workgroupSize),
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${body}
        }
      }`,
  };
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

// ---- Dropout ------------------------------------------------------------------------------------

/**
 * y[e] = x[e] * scale where lowbias32(lowbias32(i + k0[r]) ^ k1[r]) >= threshold, else 0 (dropout.ts). WGSL's u32
 * arithmetic wraps mod 2^32 as the reference's Math.imul and >>> do.
 */
function dropoutKernel({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { x, keys } = inputs as { x: TensorInfo; keys: TensorInfo };
  const { threshold, scale } = attrs as unknown as DropoutAttrs;
  const rows = keys.shape[0]!;
  const program = elementwiseProgram('gptmedDropout', x.shape, ['x', 'keys'], 'rowSize : i32, threshold : u32, scale : f32,', `
          let r = index / uniforms.rowSize;
          let i = u32(index - r * uniforms.rowSize);
          let bits = lowbias32(lowbias32(i + bitcast<u32>(keys[2 * r])) ^ bitcast<u32>(keys[2 * r + 1]));
          var y = 0.0;
          if (bits >= uniforms.threshold) { y = x[index] * uniforms.scale; }
          setOutputAtIndex(index, y);`);
  const hash = `
      fn lowbias32(v : u32) -> u32 {
        var h = v;
        h = h ^ (h >> 16u);
        h = h * 0x21f0aaadu;
        h = h ^ (h >> 15u);
        h = h * 0x735a2d97u;
        h = h ^ (h >> 15u);
        return h;
      }`;
  const withHash: Program = { ...program, getUserCode: () => hash + program.getUserCode() };
  const uniforms: Uniforms = [
    { type: 'int32', data: [size(x.shape) / rows] }, { type: 'uint32', data: [threshold] }, { type: 'float32', data: [scale] },
  ];
  return (backend as WebGPUBackend).runWebGPUProgram(withHash, [x, keys], 'float32', uniforms);
}

// ---- UnsortedSegmentSum in index order ----------------------------------------------------------

/**
 * out[s, c] = sum over i in index order of x[i, c] where segmentIds[i] = s (ids out of range dropped). One
 * invocation per output element scans all ids: O(segments x inner x ids) compares, no atomics.
 */
function unsortedSegmentSum({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = Number(attrs?.numSegments);
  const n = size(segmentIds.shape);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = size(innerShape);
  const outShape = [numSegments, ...innerShape];
  const zero = x.dtype === 'int32' ? '0' : '0.0';
  const program = elementwiseProgram('gptmedSegmentSumInOrder', outShape, ['x', 'segmentIds'], 'inner : i32, n : i32,', `
          let s = index / uniforms.inner;
          let c = index - s * uniforms.inner;
          var acc = ${zero};
          for (var i = 0; i < uniforms.n; i++) {
            if (i32(segmentIds[i]) == s) { acc = acc + x[i * uniforms.inner + c]; }
          }
          setOutputAtIndex(index, acc);`);
  const uniforms: Uniforms = [{ type: 'int32', data: [inner] }, { type: 'int32', data: [n] }];
  return (backend as WebGPUBackend).runWebGPUProgram(program, [x, segmentIds], x.dtype, uniforms);
}

// ---- Matrix products without split-K -------------------------------------------------------------

const matMulProgramFlag = 'WEBGPU_MATMUL_PROGRAM_TYPE';
/** tfjs-backend-webgpu's MatMulProgramType.MatMulSmallOutputSizeProgram (4.22). */
const smallOutputSizeProgram = 2;

/** Whether tfjs 4.22's webgpu BatchMatMul would choose its split-K (atomic) program for these inputs. */
export function choosesSplitK(a: readonly number[], b: readonly number[], transposeA: boolean, transposeB: boolean, threshold: number): boolean {
  const ra = a.length, rb = b.length;
  const outerA = transposeA ? a[ra - 1]! : a[ra - 2]!;
  const outerB = transposeB ? b[rb - 2]! : b[rb - 1]!;
  const innerB = transposeB ? b[rb - 1]! : b[rb - 2]!;
  const batch = Math.max(size(a.slice(0, -2)), size(b.slice(0, -2)));
  const workgroups = batch * Math.ceil(outerA / 32) * Math.ceil(outerB / 32);
  const fewWorkgroups = workgroups <= threshold || (outerA <= 8 && workgroups <= threshold * 2);
  return fewWorkgroups && batch * outerA * outerB > 128 && batch === 1 && innerB >= 2000;
}

/** The stock matmul kernel, switched to the small-output program where it would take the split-K one. */
function withoutSplitK(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    const flagged = tf.env().getNumber('WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL');
    const threshold = flagged > 0 ? flagged : (args.backend as unknown as { thresholdToIncreaseWorkgroups: number }).thresholdToIncreaseWorkgroups;
    const previous = tf.env().getNumber(matMulProgramFlag);
    if (previous >= 0 || !choosesSplitK(a.shape, b.shape, attrs.transposeA === true, attrs.transposeB === true, threshold)) return stock.kernelFunc(args);
    tf.env().set(matMulProgramFlag, smallOutputSizeProgram);
    try {
      return stock.kernelFunc(args);
    } finally {
      tf.env().set(matMulProgramFlag, previous);
    }
  };
  return { ...stock, kernelFunc };
}

// ---- AddN within the storage-buffer limit --------------------------------------------------------

/** The stock AddN over at most (storage buffers per stage - 1) inputs per program, left to right. */
function chunkedAddN(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const tensors = args.inputs as unknown as TensorInfo[];
    const backend = args.backend as unknown as WebGPUBackend;
    const max = backend.device.limits.maxStorageBuffersPerShaderStage - 1;
    if (tensors.length <= max) return stock.kernelFunc(args);
    const run = (inputs: TensorInfo[]): TensorInfo => stock.kernelFunc({ ...args, inputs: inputs as unknown as NamedTensorInfoMap }) as TensorInfo;
    let sum = run(tensors.slice(0, max));
    for (let from = max; from < tensors.length; from += max - 1) {
      const next = run([sum, ...tensors.slice(from, from + max - 1)]);
      backend.disposeData(sum.dataId);
      sum = next;
    }
    return sum;
  };
  return { ...stock, kernelFunc };
}

// ---- Mean and Sum gradients without ones(x.shape) ------------------------------------------------

/**
 * dy broadcast back over the reduced axes (divided by their size for Mean). tfjs keeps one gradient per kernel for
 * all backends: on any other backend this calls the stock one.
 */
function broadcastingGradient(stock: GradConfig, divide: boolean): GradConfig {
  return {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== backendName) return stock.gradFunc(dy, saved, attrs);
      const [x] = saved as [Tensor];
      const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape);
      const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const reduceSize = axes.reduce((n, axis) => n * x.shape[axis]!, 1);
      return {
        x: () => {
          const spread = tf.broadcastTo(tf.reshape(dy as Tensor, keptShape), x.shape);
          return divide ? tf.div(spread, reduceSize) : spread;
        },
      };
    },
  };
}

// ---- Rejected work becomes an error -------------------------------------------------------------

/**
 * WebGPU reports an invalid program or a failed allocation (out of GPU memory) as an event, and the work goes on
 * with garbage. Every read of values (the loss each step) waits for the GPU: the first read after such an event
 * throws one line instead of returning them.
 */
function failReadsAfterRejection(backend: WebGPUBackend): void {
  const read = backend.read.bind(backend);
  backend.read = async (dataId) => {
    const values = await read(dataId);
    const rejection = takeRejection();
    if (rejection !== null) {
      throw new UserError(`webgpu: the GPU rejected work (${rejection}), so results are invalid; a smaller --batch-size or model may fit, or use --device wasm`);
    }
    return values;
  };
}

// ---- Registration -------------------------------------------------------------------------------

function replaceKernel(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, backendName)) tf.unregisterKernel(config.kernelName, backendName);
  tf.registerKernel(config);
}

let registered = false;

/** Register the kernels above for the webgpu backend (once per process). */
export function registerWebGpuKernels(): void {
  if (registered) return;
  const backend = tf.findBackend(backendName) as unknown as WebGPUBackend;
  countRejectedPrograms(backend.device);
  failReadsAfterRejection(backend);
  replaceKernel({ kernelName: tf.UnsortedSegmentSum, backendName, kernelFunc: unsortedSegmentSum as KernelFunc });
  replaceKernel({ kernelName: dropoutKernelName, backendName, kernelFunc: dropoutKernel as KernelFunc });
  const wrapped: Array<[string, (stock: KernelConfig) => KernelConfig]> = [
    [tf.BatchMatMul, withoutSplitK], [tf._FusedMatMul, withoutSplitK], [tf.AddN, chunkedAddN],
  ];
  for (const [name, wrap] of wrapped) {
    const stock = tf.getKernel(name, backendName);
    if (!stock) throw new Error(`tfjs-backend-webgpu has no ${name} kernel`);
    replaceKernel(wrap(stock));
  }
  for (const [name, divide] of [[tf.Mean, true], [tf.Sum, false]] as const) {
    const stock = tf.getGradient(name);
    if (stock) tf.registerGradient(broadcastingGradient(stock, divide));
  }
  registered = true;
}
