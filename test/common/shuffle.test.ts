import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shuffledOrder } from '../../src/common/shuffle.js';
import { grown, Int32List } from '../../src/common/typed-arrays.js';

test('shuffledOrder gives the orders earlier releases gave for the same seed (a product promise)', () => {
  // Recorded from the three shuffles it replaced: the trainer's epoch order, tokenize's split, convert --shuffle.
  assert.deepEqual([...shuffledOrder(12, 'gptmed-data:42:0')], [5, 7, 8, 6, 3, 1, 2, 4, 0, 11, 9, 10]);
  assert.deepEqual([...shuffledOrder(12, 'gptmed-data:7:3')], [10, 4, 9, 0, 1, 7, 5, 6, 3, 11, 2, 8]);
  assert.deepEqual([...shuffledOrder(3000, '42').subarray(0, 12)], [3, 2248, 1321, 467, 2089, 1070, 2228, 1428, 1378, 323, 2970, 437]);
  assert.deepEqual([...shuffledOrder(0, '1')], []);
  assert.deepEqual([...shuffledOrder(1, '1')], [0]);
});

test('Int32List keeps every item across growth; grown copies only when short', () => {
  const list = new Int32List();
  for (let i = 0; i < 5000; i++) list.pushOne(i);
  list.push([-1, -2]);
  assert.equal(list.length, 5002);
  assert.deepEqual([...list.view().subarray(4998)], [4998, 4999, -1, -2]);
  const a = new Float64Array(4);
  assert.equal(grown(a, 4), a);
  const b = grown(a.fill(1.5), 5);
  assert.ok(b instanceof Float64Array && b.length === 8 && b[3] === 1.5);
});
