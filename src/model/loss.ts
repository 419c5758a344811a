/**
 * Next-token cross-entropy that counts only chosen targets (not padding; only
 * answer tokens when the shards carry a prompt mask).
 *
 * A custom gradient: d loss / d logits = (softmax - onehot) * weight * scale,
 * computed once over the vocabulary instead of through tfjs's generic chain of
 * log-softmax and gather gradients. Where the backend has the fused kernels
 * (wasm with the native kernels, src/backend/fast-kernels.ts), the forward pass
 * makes no [positions, vocab] temporary and the backward pass exactly one (the
 * gradient itself): the output layer's softmax is the largest tensor of a step.
 */
import * as tf from '@tensorflow/tfjs';
import { crossEntropyGradKernel, crossEntropyKernel } from '../backend/fast-kernels.js';

/** Whether the current backend has the fused cross-entropy kernels (it then needs less memory per position). */
export function hasFusedCrossEntropy(): boolean {
  return tf.getKernel(crossEntropyKernel, tf.getBackend()) !== undefined;
}

/** logZ = log Σ exp(logits) per row, and weight * (logZ - logits[target]) per row. */
function rowLosses(flat: tf.Tensor2D, targets: tf.Tensor1D, w: tf.Tensor1D, fused: boolean): { rowLoss: tf.Tensor1D; logZ: tf.Tensor1D } {
  if (fused) {
    const [rowLoss, logZ] = tf.engine().runKernel(crossEntropyKernel, { logits: flat, targets, weights: w }) as [tf.Tensor1D, tf.Tensor1D];
    return { rowLoss, logZ };
  }
  // A tidy, so logSumExp's [positions, vocab] temporaries go now, not at the end of the step.
  return tf.tidy(() => {
    const [N, V] = flat.shape;
    const logZ = tf.logSumExp(flat, -1) as tf.Tensor1D;
    // The target's logit at flat index n * V + target[n].
    const targetIndex = tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), targets);
    const targetLogit = tf.gather(flat.reshape([N * V]), targetIndex);
    return { rowLoss: tf.mul(tf.sub(logZ, targetLogit), w) as tf.Tensor1D, logZ };
  });
}

/**
 * scale * sum over positions of weight * (-log softmax(logits)[target]).
 * logits [B, T, V]; targets [B, T] int32; weights [B, T] float32 (0 or 1).
 * With scale = 1 / (number of counted targets) this is the mean loss.
 */
export function weightedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, weights: tf.Tensor2D, scale: number): tf.Scalar {
  const [B, T, V] = logits.shape;
  const N = B * T;
  const fused = hasFusedCrossEntropy();
  const loss = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const flat = input.reshape([N, V]) as tf.Tensor2D;
    const flatTargets = targets.reshape([N]) as tf.Tensor1D;
    const w = weights.reshape([N]) as tf.Tensor1D;
    const { rowLoss, logZ } = rowLosses(flat, flatTargets, w, fused);
    const value = tf.mul(tf.sum(rowLoss), scale) as tf.Scalar;
    // Saved, not captured: tensors made inside a gradient scope are gone by the time gradFunc runs.
    save([flat, logZ, w, flatTargets]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedFlat, savedLogZ, savedW, savedTargets] = saved;
        const rowScale = tf.mul(savedW, tf.mul(dy, scale));
        if (fused) {
          const dx = tf.engine().runKernel(crossEntropyGradKernel, { logits: savedFlat, logZ: savedLogZ, targets: savedTargets, rowScale }) as tf.Tensor;
          return dx.reshape([B, T, V]);
        }
        const probs = tf.exp(tf.sub(savedFlat, savedLogZ.reshape([N, 1])));
        // int32 then cast: the wasm backend's OneHot ignores a float32 dtype and returns int bits.
        const oneHot = tf.cast(tf.oneHot(savedTargets, V), 'float32');
        return tf.mul(tf.sub(probs, oneHot), rowScale.reshape([N, 1])).reshape([B, T, V]);
      },
    };
  });
  return loss(logits) as tf.Scalar;
}
