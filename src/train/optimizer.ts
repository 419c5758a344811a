/**
 * AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it:
 *   p <- p * (1 - lr * wd)            (decoupled decay, only where the parameter asks for it)
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * plus clipping of the gradients by their global norm.
 */
import * as tf from '@tensorflow/tfjs';
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
    tf.tidy(() => {
      this.slots.forEach(({ param, m, v }, i) => {
        const g = gradScale === 1 ? grads[i] : tf.mul(grads[i], gradScale);
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const p = param.weightDecay && weightDecay > 0 ? tf.mul(param.variable, 1 - lr * weightDecay) : param.variable;
        const denom = tf.add(tf.sqrt(tf.div(v, correction2)), eps);
        param.variable.assign(tf.sub(p, tf.mul(tf.div(m, denom), lr / correction1)));
      });
    });
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
  const norm = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
  const value = (await norm.data())[0]!;
  norm.dispose();
  return value;
}

/** The factor that brings the global norm down to `maxNorm` (0: no clipping). */
export function clipScale(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}
