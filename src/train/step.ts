/**
 * One optimizer step: forward and backward over its micro-batches (gradient
 * accumulation), global-norm clipping, AdamW. The loss of a step is the mean
 * over all counted targets of all its micro-batches, so accumulating N
 * micro-batches equals one batch N times as large.
 *
 * Values come back with `await data()`, not dataSync: the webgpu backend cannot read synchronously in Node.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import type { GPT } from '../model/gpt.js';
import { weightedCrossEntropy } from '../model/loss.js';
import type { Batch } from './data.js';
import { clipScale, globalNorm, type AdamW } from './optimizer.js';

export interface StepResult {
  /** Mean loss over the step's counted targets. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Input positions processed (rows x positions). */
  tokens: number;
}

/** Thrown when the loss or the gradients stop being finite; the update is not applied. */
export class NonFiniteLossError extends UserError {
  constructor(
    readonly loss: number,
    readonly gradNorm: number,
  ) {
    super(`loss ${loss}, gradient norm ${gradNorm}`);
  }
}

function batchTensors(b: Batch): { x: tf.Tensor2D; y: tf.Tensor2D; w: tf.Tensor2D } {
  return {
    x: tf.tensor2d(b.x, [b.rows, b.T], 'int32'),
    y: tf.tensor2d(b.y, [b.rows, b.T], 'int32'),
    w: tf.tensor2d(b.weights, [b.rows, b.T], 'float32'),
  };
}

export class TrainStep {
  private readonly variables: tf.Variable[];

  constructor(
    private readonly model: GPT,
    private readonly optimizer: AdamW,
    private readonly gradClip: number,
  ) {
    // With LoRA only the adapters: the frozen base gets no gradients.
    this.variables = model.trainableParameters().map((p) => p.variable);
  }

  /**
   * `dropoutSeed` makes the step's dropout masks reproducible (it is derived from the run's seed and the step);
   * masks are keyed by a row's index within the step, so how the rows are split into micro-batches does not
   * change them.
   */
  async run(microBatches: readonly Batch[], lr: number, dropoutSeed: string): Promise<StepResult> {
    const targets = microBatches.reduce((n, b) => n + b.targets, 0);
    const scale = 1 / Math.max(1, targets);
    let grads: tf.Tensor[] = [];
    let loss = 0;
    let tokens = 0;
    let rowOffset = 0;
    // Every tensor is owned by `grads` or disposed before the next await: a failed read (webgpu reports work
    // the GPU rejected there) leaks nothing.
    try {
      for (const [j, b] of microBatches.entries()) {
        const micro = tf.tidy(() =>
          tf.variableGrads(() => {
            const { x, y, w } = batchTensors(b);
            const logits = this.model.forward(x, { training: true, dropoutSeed, dropoutRowOffset: rowOffset });
            return weightedCrossEntropy(logits, y, w, scale);
          }, this.variables),
        );
        const ordered = this.variables.map((v) => micro.grads[v.name]);
        if (j === 0) {
          grads = ordered;
        } else {
          const previous = grads;
          grads = previous.map((g, i) => tf.add(g, ordered[i]));
          for (const t of [...previous, ...ordered]) t.dispose();
        }
        try {
          loss += (await micro.value.data())[0]!;
        } finally {
          micro.value.dispose();
        }
        tokens += b.rows * b.T;
        rowOffset += b.rows;
      }
      const gradNorm = await globalNorm(grads);
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) throw new NonFiniteLossError(loss, gradNorm);
      this.optimizer.apply(grads, lr, clipScale(gradNorm, this.gradClip));
      return { loss, gradNorm, tokens };
    } finally {
      for (const g of grads) g.dispose();
    }
  }
}

/** Mean loss over the counted targets of `batches`, without dropout. */
export async function evaluateLoss(model: GPT, batches: readonly Batch[]): Promise<number> {
  let sum = 0;
  let targets = 0;
  for (const b of batches) {
    const s = tf.tidy(() => {
      const { x, y, w } = batchTensors(b);
      return weightedCrossEntropy(model.forward(x), y, w, 1);
    });
    try {
      sum += (await s.data())[0]!;
    } finally {
      s.dispose();
    }
    targets += b.targets;
  }
  return sum / targets;
}
