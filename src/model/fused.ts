/**
 * The model's element-wise chains, each one fused native kernel where the backend registered it (wasm with
 * the native kernels, src/backend/fast-kernels.ts), else the stock tfjs formula it replaces. Both compute the
 * same thing within float rounding; the fused one is one pass and keeps one tensor (and one gradient) where the
 * stock chain keeps several of the activation's size until the step ends: less time and less memory.
 */
import * as tf from '@tensorflow/tfjs';
import { causalSoftmaxKernel, geluKernel, layerNormKernel } from '../backend/fast-kernels.js';

export const layerNormEps = 1e-5;
/** Added to attention scores of future positions on the stock path; finite so a fully masked row cannot produce NaN. */
export const maskedScore = -1e9;

function registered(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

export function layerNorm(x: tf.Tensor3D, [gamma, beta]: [tf.Tensor, tf.Tensor]): tf.Tensor3D {
  if (registered(layerNormKernel)) {
    const [y] = tf.engine().runKernel(layerNormKernel, { x, gamma, beta }, { eps: layerNormEps }) as tf.Tensor[];
    return y as tf.Tensor3D;
  }
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, layerNormEps))), gamma), beta);
}

/** GELU with the exact erf, as torch.nn.GELU(). */
export function gelu(x: tf.Tensor3D): tf.Tensor3D {
  if (registered(geluKernel)) return tf.engine().runKernel(geluKernel, { x }) as tf.Tensor3D;
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * Attention weights softmax(scores · scale + mask) over the last axis of scores [B, H, T, past + T], with the
 * causal mask: query i (position past + i) sees keys 0..past + i.
 */
export function causalAttentionWeights(scores: tf.Tensor4D, scale: number, past: number): tf.Tensor4D {
  if (registered(causalSoftmaxKernel)) return tf.engine().runKernel(causalSoftmaxKernel, { x: scores }, { scale, past }) as tf.Tensor4D;
  const T = scores.shape[2];
  return tf.softmax(tf.add(tf.mul(scores, scale), causalMask(T, past)), -1) as tf.Tensor4D;
}

/** Additive mask [T, past + T]: query i (position past + i) sees keys 0..past + i. */
function causalMask(T: number, past: number): tf.Tensor2D {
  const L = past + T;
  const values = new Float32Array(T * L);
  for (let i = 0; i < T; i++) values.fill(maskedScore, i * L + past + i + 1, (i + 1) * L);
  return tf.tensor2d(values, [T, L]);
}
