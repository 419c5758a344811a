/**
 * Kernels the tfjs wasm backend (4.22) lacks but training needs, registered
 * for correctness. UnsortedSegmentSum is the gradient of tf.gather, i.e. of the
 * token and position embeddings; without it the first backward pass fails.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** out[segmentIds[i], ...] += x[i, ...]; ids outside [0, numSegments) are dropped, as in TensorFlow. */
function unsortedSegmentSum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = Number((args.attrs as { numSegments: number }).numSegments);
  const idsRank = segmentIds.shape.length;
  const innerShape = x.shape.slice(idsRank);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const values = backend.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = backend.readSync(segmentIds.dataId) as Int32Array;
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  const outValues = backend.typedArrayFromHeap(out);
  outValues.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= numSegments) continue;
    const src = i * inner;
    const dst = id * inner;
    for (let j = 0; j < inner; j++) outValues[dst + j] += values[src + j];
  }
  return out;
}

/** Register, once, what the wasm backend is missing. */
export function registerMissingWasmKernels(): void {
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as tf.KernelFunc });
  }
}
