import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { applyDropout, dropout, dropoutAttrs, maskBits, rowKey } from '../../src/backend/dropout.js';

/** The mask's definition written again in Python's unbounded integers: an independent reading of the formula. */
const pythonMaskBits = `
import sys, json
M = 0xffffffff
def lowbias32(x):
    x ^= x >> 16; x = (x * 0x21f0aaad) & M; x ^= x >> 15; x = (x * 0x735a2d97) & M; x ^= x >> 15
    return x
cases = json.loads(sys.stdin.read())
print(json.dumps([lowbias32(lowbias32((i + k0) & M) ^ k1) for k0, k1, i in cases]))
`;

function keysOf(rows: number, label: string): Int32Array {
  const keys = new Int32Array(2 * rows);
  for (let r = 0; r < rows; r++) keys.set(rowKey(`${label}:${r}`), 2 * r);
  return keys;
}

describe('dropout (counter-hash masks)', () => {
  it('computes the hash bits its definition gives, as Python computes them', () => {
    const cases = [[0, 0, 0], [1, 2, 3], [0xffffffff, 0x80000000, 5], [...rowKey('42:0:7'), 65535], [123456789, 987654321, 4294967295]];
    const expected = JSON.parse(execFileSync('python3', ['-c', pythonMaskBits], { input: JSON.stringify(cases) }).toString()) as number[];
    assert.deepEqual(cases.map(([k0, k1, i]) => maskBits(k0!, k1!, i!)), expected);
  });

  it('keeps a fraction 1 - rate of elements, scaled by 1 / (1 - rate), with rows independent of each other', () => {
    const rows = 64;
    const rowSize = 16384;
    const y = applyDropout(new Float32Array(rows * rowSize).fill(1), keysOf(rows, 's'), dropoutAttrs(0.1));
    const kept = y.filter((v) => v !== 0);
    assert.ok(kept.every((v) => Math.abs(v - 1 / 0.9) < 1e-6));
    assert.ok(Math.abs(kept.length / y.length - 0.9) < 0.002, `kept ${kept.length / y.length}`);
    // Two rows agree where both keep or both drop: 0.9^2 + 0.1^2 = 0.82 for independent masks.
    let same = 0;
    for (let i = 0; i < rowSize; i++) if ((y[i] === 0) === (y[rowSize + i] === 0)) same++;
    assert.ok(Math.abs(same / rowSize - 0.82) < 0.01, `rows agree on ${same / rowSize}`);
  });

  for (const backend of ['wasm', 'cpu']) {
    it(`on ${backend}: the kernel gives the reference bit for bit, and its gradient applies the same mask`, async () => {
      await tf.setBackend(backend);
      const values = Float32Array.from({ length: 3 * 40 }, (_, i) => Math.sin(i) * 3);
      const keys = keysOf(3, backend);
      const x = tf.tensor3d(values, [3, 5, 8]);
      const y = dropout(x, keys, 0.25).dataSync();
      assert.deepEqual(Array.from(y), Array.from(applyDropout(values, keys, dropoutAttrs(0.25))));
      const weights = Float32Array.from({ length: 120 }, (_, i) => i / 7 - 3);
      const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(dropout(t, keys, 0.25), tf.tensor3d(weights, [3, 5, 8]))))(x).dataSync();
      assert.deepEqual(Array.from(grad), Array.from(applyDropout(weights, keys, dropoutAttrs(0.25))));
    });
  }
});
