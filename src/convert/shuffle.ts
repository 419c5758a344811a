/**
 * Shuffling pairs without holding them in memory: each formatted pair goes to
 * a scratch file and only its offset and length are kept (12 bytes a pair);
 * the blocks are then read back in a seeded random order.
 */
import * as fs from 'node:fs';
import { tempPathFor } from '../common/atomic.js';
import { shuffledOrder } from '../common/shuffle.js';
import { grown } from '../common/typed-arrays.js';

export class ShuffleSpool {
  private readonly path: string;
  private fd: number;
  private offsets = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private count = 0;
  private size = 0;

  /** The scratch file lives beside `near` (the output), on the same disk. */
  constructor(near: string) {
    this.path = tempPathFor(`${near}.shuffle`);
    this.fd = fs.openSync(this.path, 'w+');
  }

  add(block: string): void {
    const bytes = Buffer.from(block, 'utf8');
    this.offsets = grown(this.offsets, this.count + 1);
    this.lengths = grown(this.lengths, this.count + 1);
    this.offsets[this.count] = this.size;
    this.lengths[this.count] = bytes.length;
    this.count++;
    fs.writeSync(this.fd, bytes, 0, bytes.length, this.size);
    this.size += bytes.length;
  }

  /** The blocks in an order fixed by `seed` (shuffledOrder). */
  *drain(seed: number): Generator<string> {
    const order = shuffledOrder(this.count, String(seed));
    let buf = Buffer.alloc(1 << 16);
    for (const k of order) {
      const len = this.lengths[k];
      if (len > buf.length) buf = Buffer.alloc(len);
      fs.readSync(this.fd, buf, 0, len, this.offsets[k]);
      yield buf.toString('utf8', 0, len);
    }
  }

  /** Close and remove the scratch file. */
  dispose(): void {
    fs.closeSync(this.fd);
    fs.rmSync(this.path, { force: true });
  }
}
