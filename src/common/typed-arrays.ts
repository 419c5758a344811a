/** Typed arrays that grow as items come (ids, counts, offsets) without a copy per item. */

type GrowableArray = Int32Array | Uint32Array | Uint16Array | Float64Array;

/** `array`, or a copy at least twice as long when it holds fewer than `needed` items. */
export function grown<T extends GrowableArray>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const copy = new (array.constructor as new (n: number) => T)(Math.max(needed, array.length * 2));
  copy.set(array);
  return copy;
}

/** A growing Int32Array: push items, then view() the filled part. */
export class Int32List {
  items = new Int32Array(4096);
  length = 0;

  push(src: ArrayLike<number>): void {
    this.items = grown(this.items, this.length + src.length);
    this.items.set(src, this.length);
    this.length += src.length;
  }

  pushOne(item: number): void {
    this.items = grown(this.items, this.length + 1);
    this.items[this.length++] = item;
  }

  view(): Int32Array<ArrayBuffer> {
    return this.items.subarray(0, this.length);
  }
}
