/**
 * AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it:
 *   p <- p * (1 - lr * wd)            (decoupled decay, only where the parameter asks for it)
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * plus clipping of the gradients by their global norm.
 */
import * as tf from '@tensorflow/tfjs';
import { adamWKernel, sumSquaresKernel } from '../backend/fast-kernels.js';
import { UserError } from '../common/errors.js';
import type { NamedArray } from '../model/checkpoint.js';
import type { Parameter } from '../model/gpt.js';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

interface Slot {
  param: Parameter;
  m: tf.Variable;
  v: tf.Variable;
}

export class AdamW {
  /** Updates applied so far (t in the bias corrections). */
  private updates = 0;
  private readonly slots: Slot[];

  constructor(
    params: readonly Parameter[],
    private readonly settings: AdamWSettings,
  ) {
    this.slots = params.map((param) => ({
      param,
      m: tf.variable(tf.zerosLike(param.variable), false),
      v: tf.variable(tf.zerosLike(param.variable), false),
    }));
  }

  /** Apply one update with gradients given in the parameters' order, multiplied by `gradScale` (clipping). */
  apply(grads: readonly tf.Tensor[], lr: number, gradScale = 1): void {
    const { beta1, beta2, eps, weightDecay } = this.settings;
    this.updates++;
    const correction1 = 1 - beta1 ** this.updates;
    const correction2 = 1 - beta2 ** this.updates;
    const fused = tf.getKernel(adamWKernel, tf.getBackend()) !== undefined;
    // One tidy per parameter: its temporaries go before the next parameter's are made.
    this.slots.forEach((slot, i) => tf.tidy(() => {
      const decay = slot.param.weightDecay && weightDecay > 0 ? 1 - lr * weightDecay : 1;
      if (fused) {
        const { param, m, v } = slot;
        const settings = [lr, beta1, beta2, eps, decay, gradScale, correction1, correction2];
        const [p1, m1, v1] = tf.engine().runKernel(adamWKernel, { p: param.variable, m, v, g: grads[i]! }, { settings }) as tf.Tensor[];
        m.assign(m1!);
        v.assign(v1!);
        param.variable.assign(p1!);
      } else {
        this.stockUpdate(slot, grads[i]!, { lr, decay, gradScale, correction1, correction2 });
      }
    }));
  }

  /** The update as tfjs ops, one tensor per step of the formula (backends without the fused kernel). */
  private stockUpdate({ param, m, v }: Slot, grad: tf.Tensor, o: { lr: number; decay: number; gradScale: number; correction1: number; correction2: number }): void {
    const { beta1, beta2, eps } = this.settings;
    const g = o.gradScale === 1 ? grad : tf.mul(grad, o.gradScale);
    m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
    v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
    const p = o.decay !== 1 ? tf.mul(param.variable, o.decay) : param.variable;
    const denom = tf.add(tf.sqrt(tf.div(v, o.correction2)), eps);
    param.variable.assign(tf.sub(p, tf.mul(tf.div(m, denom), o.lr / o.correction1)));
  }

  /** Moments and update count, for a checkpoint. */
  async state(): Promise<{ updates: number; arrays: NamedArray[] }> {
    const arrays: NamedArray[] = [];
    for (const { param, m, v } of this.slots) {
      arrays.push({ name: `m.${param.name}`, shape: param.shape, data: (await m.data()) as Float32Array });
      arrays.push({ name: `v.${param.name}`, shape: param.shape, data: (await v.data()) as Float32Array });
    }
    return { updates: this.updates, arrays };
  }

  /** Restore what state() saved; `source` names the file for errors. */
  load(updates: number, arrays: ReadonlyMap<string, Float32Array>, source: string): void {
    for (const { param, m, v } of this.slots) {
      for (const [prefix, slot] of [['m', m], ['v', v]] as const) {
        const data = arrays.get(`${prefix}.${param.name}`);
        if (!data || data.length !== param.variable.size) throw new UserError(`${source}: optimizer state for ${param.name} is missing or has the wrong size`);
        tf.tidy(() => slot.assign(tf.tensor(data, param.shape, 'float32')));
      }
    }
    this.updates = updates;
  }

  dispose(): void {
    for (const { m, v } of this.slots) {
      m.dispose();
      v.dispose();
    }
  }
}

/** The global L2 norm of the gradients (read asynchronously: the webgpu backend has no synchronous read in Node). */
export async function globalNorm(grads: readonly tf.Tensor[]): Promise<number> {
  // The fused kernel squares and sums in one pass, without a squared copy of each gradient.
  const sumOfSquares = tf.getKernel(sumSquaresKernel, tf.getBackend()) !== undefined
    ? (g: tf.Tensor): tf.Tensor => tf.engine().runKernel(sumSquaresKernel, { x: g }) as tf.Tensor
    : (g: tf.Tensor): tf.Tensor => tf.sum(tf.square(g));
  const norm = tf.tidy(() => tf.sqrt(tf.addN(grads.map(sumOfSquares))));
  try {
    return (await norm.data())[0]!;
  } finally {
    norm.dispose();
  }
}

/** The factor that brings the global norm down to `maxNorm` (0: no clipping). */
export function clipScale(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}
