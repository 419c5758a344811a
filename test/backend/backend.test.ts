import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/index.js';
import { UserError } from '../../src/common/errors.js';

const nativeInstalled = async (pkg: string): Promise<boolean> => {
  try {
    await import(pkg);
    return true;
  } catch {
    return false;
  }
};

describe('initBackend', () => {
  it('starts the requested backend and says which in one line', async () => {
    const wasm = await initBackend('wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(wasm.backend, 'wasm');
    assert.match(wasm.line, /^backend: wasm \(requested with --device wasm\)/);
    assert.ok(!wasm.line.includes('\n'));
  });

  it('auto: takes a native package when installed, else wasm, and names what is missing', async () => {
    const gpu = await nativeInstalled('@tensorflow/tfjs-node-gpu');
    const cpu = await nativeInstalled('@tensorflow/tfjs-node');
    const info = await initBackend('auto');
    if (!gpu && !cpu) {
      assert.equal(info.backend, 'wasm');
      assert.match(info.line, /@tensorflow\/tfjs-node-gpu is not installed; @tensorflow\/tfjs-node is not installed/);
    } else {
      assert.equal(info.backend, 'tensorflow');
    }
  });

  it('gpu without tfjs-node-gpu (or without a GPU) is a one-line error', async (t) => {
    if (await nativeInstalled('@tensorflow/tfjs-node-gpu')) {
      t.diagnostic('tfjs-node-gpu is installed here; the missing-package message cannot be checked');
      return;
    }
    await assert.rejects(initBackend('gpu'), (e: unknown) => e instanceof UserError && /--device gpu: @tensorflow\/tfjs-node-gpu is not installed/.test(e.message));
  });

  it('registers UnsortedSegmentSum for wasm, equal to the cpu kernel', async () => {
    const x = [
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
      [10, 11, 12],
      [13, 14, 15],
    ];
    const ids = [2, 0, 2, -1, 7];
    const results: number[][] = [];
    for (const device of ['cpu', 'wasm'] as const) {
      await initBackend(device);
      const out = tf.unsortedSegmentSum(tf.tensor2d(x), tf.tensor1d(ids, 'int32'), 4);
      results.push(Array.from(out.dataSync()));
      out.dispose();
    }
    assert.deepEqual(results[1], results[0]);
    assert.deepEqual(results[1], [4, 5, 6, 0, 0, 0, 8, 10, 12, 0, 0, 0]);
  });
});
