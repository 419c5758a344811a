import { grown } from '../common/typed-arrays.js';

/**
 * Word -> ids, looked up by the word's characters where they stand in the
 * text: a word seen before costs one hash and one comparison, and no string
 * is made for it (a Map<string, ...> would make one per word, and most of the
 * encoding time went there). Open addressing over FNV-1a hashes of UTF-16
 * code units; the characters and ids live in growing typed arrays.
 */
export class WordMemo {
  private slots = new Int32Array(1 << 12); // entry + 1; 0 is empty
  private chars = new Uint16Array(1 << 16);
  private charsUsed = 0;
  private ids = new Int32Array(1 << 16);
  private idsUsed = 0;
  // Per entry: hash, characters (start, length), ids (start, length; set by setIds).
  private hashes = new Int32Array(1 << 11);
  private charStart = new Int32Array(1 << 11);
  private charLength = new Int32Array(1 << 11);
  private idStart = new Int32Array(1 << 11);
  private idLength = new Int32Array(1 << 11);
  size = 0;

  clear(): void {
    this.slots.fill(0);
    this.charsUsed = 0;
    this.idsUsed = 0;
    this.size = 0;
  }

  /** The entry of text[start, end), added (not yet encoded) when new. */
  entry(text: string, start: number, end: number, hash: number): number {
    const mask = this.slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const e = this.slots[slot] - 1;
      if (e < 0) return this.add(text, start, end, hash, slot);
      if (this.hashes[e] === hash && this.charLength[e] === end - start && this.sameChars(e, text, start)) return e;
    }
  }

  private sameChars(e: number, text: string, start: number): boolean {
    const from = this.charStart[e];
    for (let k = 0; k < this.charLength[e]; k++) if (this.chars[from + k] !== text.charCodeAt(start + k)) return false;
    return true;
  }

  private add(text: string, start: number, end: number, hash: number, slot: number): number {
    const e = this.size++;
    if (e === this.hashes.length) {
      for (const name of ['hashes', 'charStart', 'charLength', 'idStart', 'idLength'] as const) this[name] = grown(this[name], e + 1);
    }
    this.chars = grown(this.chars, this.charsUsed + end - start);
    for (let k = start; k < end; k++) this.chars[this.charsUsed++] = text.charCodeAt(k);
    this.hashes[e] = hash;
    this.charStart[e] = this.charsUsed - (end - start);
    this.charLength[e] = end - start;
    this.slots[slot] = e + 1;
    if (this.size * 2 > this.slots.length) this.rehash();
    return e;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    const mask = this.slots.length - 1;
    for (let e = 0; e < this.size; e++) {
      let slot = this.hashes[e] & mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
      this.slots[slot] = e + 1;
    }
  }

  setIds(e: number, ids: ArrayLike<number>, from: number, to: number): void {
    this.ids = grown(this.ids, this.idsUsed + to - from);
    this.idStart[e] = this.idsUsed;
    this.idLength[e] = to - from;
    for (let k = from; k < to; k++) this.ids[this.idsUsed++] = ids[k];
  }

  idCount(e: number): number {
    return this.idLength[e];
  }

  /** Copy entry e's ids into out at `at`; returns the position after them. */
  copyIds(e: number, out: Int32Array, at: number): number {
    const from = this.idStart[e];
    const n = this.idLength[e];
    for (let k = 0; k < n; k++) out[at + k] = this.ids[from + k];
    return at + n;
  }
}
