/**
 * Shuffling pairs without holding them in memory: each formatted pair goes to
 * a scratch file and only its offset and length are kept (12 bytes a pair);
 * the blocks are then read back in a seeded random order.
 */
import * as fs from 'node:fs';
import seedrandom from 'seedrandom';
import { tempPathFor } from '../common/atomic.js';

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
    if (this.count === this.offsets.length) {
      const offsets = new Float64Array(this.count * 2);
      offsets.set(this.offsets);
      this.offsets = offsets;
      const lengths = new Uint32Array(this.count * 2);
      lengths.set(this.lengths);
      this.lengths = lengths;
    }
    this.offsets[this.count] = this.size;
    this.lengths[this.count] = bytes.length;
    this.count++;
    fs.writeSync(this.fd, bytes, 0, bytes.length, this.size);
    this.size += bytes.length;
  }

  /** The blocks in an order fixed by `seed` (Fisher-Yates over seedrandom). */
  *drain(seed: number): Generator<string> {
    const order = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) order[i] = i;
    const rng = seedrandom(String(seed));
    for (let i = this.count - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
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
