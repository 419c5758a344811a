/**
 * GptmedDropout on webgpu (a WGSL program, src/backend/webgpu-kernels.ts) against the JavaScript reference of
 * src/backend/dropout.ts, bit for bit. Runs on SwiftShader where there is no GPU (webgpu-env.ts).
 *
 * The program multiplies in float32, by the scale as a float32 uniform; the reference multiplies in float64 by
 * the float64 scale 1 / (1 - rate) and rounds once, which differs in the last bit for about half the kept
 * elements wherever that scale is not a float32 (0.1, 0.25). So the reference runs here with the scale rounded
 * to float32: the product of two float32 values is exact in float64, and rounding it once is float32's product.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { applyDropout, dropout, dropoutAttrs, rowKey } from '../../src/backend/dropout.js';
import { initBackend } from '../../src/backend/index.js';
import { rejectedWebGpuPrograms } from '../../src/backend/webgpu.js';
import { useSwiftShaderUnlessAGpuIsSet } from './webgpu-env.js';

useSwiftShaderUnlessAGpuIsSet();

/** The reference's attributes with the scale the GPU multiplies by. */
function float32Attrs(rate: number): ReturnType<typeof dropoutAttrs> {
  const attrs = dropoutAttrs(rate);
  return { ...attrs, scale: Math.fround(attrs.scale) };
}

function keysOf(rows: number, label: string): Int32Array {
  const keys = new Int32Array(2 * rows);
  for (let r = 0; r < rows; r++) keys.set(rowKey(`${label}:${r}`), 2 * r);
  return keys;
}

describe('GptmedDropout on webgpu', () => {
  for (const rate of [0.1, 0.25, 0.5]) {
    it(`rate ${rate}: the kernel gives the reference bit for bit, and its gradient applies the same mask`, async () => {
      await initBackend('webgpu');
      const shape: [number, number, number] = [3, 37, 41]; // rows of 1517 elements: not a multiple of the workgroup
      const n = shape[0] * shape[1] * shape[2];
      const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3 + i / 1000);
      const keys = keysOf(shape[0], `webgpu:${rate}`);
      const x = tf.tensor3d(values, shape);
      const y = await dropout(x, keys, rate).data();
      assert.deepEqual(Array.from(y), Array.from(applyDropout(values, keys, float32Attrs(rate))));
      // The mask itself is the reference's: the same elements dropped.
      assert.deepEqual(Array.from(y, (v) => v === 0), Array.from(applyDropout(values, keys, dropoutAttrs(rate)), (v) => v === 0));
      const weights = Float32Array.from({ length: n }, (_, i) => i / 7 - 3);
      const grad = await tf.grad((t: tf.Tensor) => tf.sum(tf.mul(dropout(t, keys, rate), tf.tensor3d(weights, shape))))(x).data();
      assert.deepEqual(Array.from(grad), Array.from(applyDropout(weights, keys, float32Attrs(rate))));
      assert.equal(rejectedWebGpuPrograms(), 0);
    });
  }
});
