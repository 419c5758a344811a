/**
 * Next-token cross-entropy that counts only chosen targets (not padding; only
 * answer tokens when the shards carry a prompt mask).
 *
 * A custom gradient: d loss / d logits = (softmax - onehot) * weight * scale,
 * computed once over the vocabulary instead of through tfjs's generic chain of
 * log-softmax and gather gradients.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * scale * sum over positions of weight * (-log softmax(logits)[target]).
 * logits [B, T, V]; targets [B, T] int32; weights [B, T] float32 (0 or 1).
 * With scale = 1 / (number of counted targets) this is the mean loss.
 */
export function weightedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, weights: tf.Tensor2D, scale: number): tf.Scalar {
  const [B, T, V] = logits.shape;
  const N = B * T;
  const loss = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const flat = input.reshape([N, V]);
    const logZ = tf.logSumExp(flat, -1);
    // The target's logit at flat index n * V + target[n].
    const flatTargets = targets.reshape([N]);
    const targetIndex = tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), flatTargets);
    const targetLogit = tf.gather(flat.reshape([N * V]), targetIndex);
    const w = weights.reshape([N]);
    const value = tf.mul(tf.sum(tf.mul(tf.sub(logZ, targetLogit), w)), scale) as tf.Scalar;
    // Saved, not captured: tensors made inside a gradient scope are gone by the time gradFunc runs.
    save([flat, logZ, w, flatTargets]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedFlat, savedLogZ, savedW, savedTargets] = saved;
        const probs = tf.exp(tf.sub(savedFlat, savedLogZ.reshape([N, 1])));
        // int32 then cast: the wasm backend's OneHot ignores a float32 dtype and returns int bits.
        const oneHot = tf.cast(tf.oneHot(savedTargets, V), 'float32');
        const rowScale = tf.mul(savedW, tf.mul(dy, scale)).reshape([N, 1]);
        return tf.mul(tf.sub(probs, oneHot), rowScale).reshape([B, T, V]);
      },
    };
  });
  return loss(logits) as tf.Scalar;
}
