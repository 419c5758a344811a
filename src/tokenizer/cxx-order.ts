/**
 * The two places where spm_train's choice between equally frequent pairs
 * depends on C++ library internals, reproduced so that its output is too:
 * the iteration order of its symbol cache (a libstdc++ 12
 * std::unordered_map<uint64, Symbol*>, which SentencePiece 0.1.97's bundled
 * absl::flat_hash_map aliases) and which elements std::partial_sort keeps
 * (libstdc++'s heap select). Keys are SentencePiece's symbol fingerprints.
 */

const MASK64 = (1n << 64n) - 1n;

/** SentencePiece's port::FingerprintCat: Bob Jenkins' 64-bit mix of two fingerprints. */
export function fingerprintCat(x: bigint, y: bigint): bigint {
  let a = x;
  let b = 0xe08c1d668b756f82n;
  let c = y;
  const mix = (): void => {
    a = (a - b - c) & MASK64; a ^= c >> 43n;
    b = (b - c - a) & MASK64; b ^= (a << 9n) & MASK64;
    c = (c - a - b) & MASK64; c ^= b >> 8n;
    a = (a - b - c) & MASK64; a ^= c >> 38n;
    b = (b - c - a) & MASK64; b ^= (a << 23n) & MASK64;
    c = (c - a - b) & MASK64; c ^= b >> 5n;
    a = (a - b - c) & MASK64; a ^= c >> 35n;
    b = (b - c - a) & MASK64; b ^= (a << 49n) & MASK64;
    c = (c - a - b) & MASK64; c ^= b >> 11n;
    a = (a - b - c) & MASK64; a ^= c >> 12n;
    b = (b - c - a) & MASK64; b ^= (a << 18n) & MASK64;
    c = (c - a - b) & MASK64; c ^= b >> 22n;
  };
  mix();
  return c;
}

/** libstdc++'s __prime_list (bucket counts), up to what a trainer can need. */
const PRIMES = [
  2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127, 137, 139, 149,
  157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409, 439, 467, 503, 541, 577, 619, 661, 709, 761, 823,
  887, 953, 1031, 1109, 1193, 1289, 1381, 1493, 1613, 1741, 1879, 2029, 2179, 2357, 2549, 2753, 2971, 3209, 3469, 3739, 4027, 4349,
  4703, 5087, 5503, 5953, 6427, 6949, 7517, 8123, 8783, 9497, 10273, 11113, 12011, 12983, 14033, 15173, 16411, 17749, 19183, 20753,
  22447, 24281, 26267, 28411, 30727, 33223, 35933, 38873, 42043, 45481, 49201, 53201, 57557, 62233, 67307, 72817, 78779, 85229,
  92203, 99733, 107897, 116731, 126271, 136607, 147793, 159871, 172933, 187091, 202409, 218971, 236897, 256279, 277261, 299951,
  324503, 351061, 379787, 410857, 444487, 480881, 520241, 562841, 608903, 658753, 712697, 771049, 834181, 902483, 976369, 1056323,
  1142821, 1236397, 1337629, 1447153, 1565659, 1693859, 1832561, 1982627, 2144977, 2320627, 2510653, 2716249, 2938679, 3179303,
  3439651, 3721303, 4026031, 4355707, 4712381, 5098259, 5515729, 5967347, 6456007, 6984629, 7556579, 8175383, 8844859, 9569143,
  10352717, 11200489, 12117689, 13109983, 14183539, 15345007, 16601593, 17961079, 19431899, 21023161, 22744717, 24607243,
  26622317, 28802401, 31160981, 33712729, 36473443, 39460231, 42691603, 46187573, 49969847, 54061849, 58488943, 63278561,
];
const FAST_BUCKETS = [2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13];
const TWO32 = 2 ** 32;

/**
 * The order in which a libstdc++ unordered_map with unique uint64 keys and
 * the identity hash visits its elements, under inserts and erases.
 * Elements are small integer ids (>= 1); 0 is the before-begin node.
 */
export class UnorderedMapOrder {
  private bucketCount = 1;
  private nextResize = 0;
  private count = 0;
  private buckets = new Int32Array(1).fill(-1);
  private next = new Int32Array(1024).fill(-1);
  private keyHi = new Float64Array(1024);
  private keyLo = new Float64Array(1024);
  private order = new Int32Array(1024);

  /** Number of elements. */
  get size(): number {
    return this.count;
  }

  private bucketOf(id: number, count = this.bucketCount): number {
    // (hi * 2^32 + lo) mod count, exactly, with doubles (count < 2^26).
    return (((this.keyHi[id] % count) * (TWO32 % count)) % count + (this.keyLo[id] % count)) % count;
  }

  private nextBucketCount(n: number): number {
    if (n < FAST_BUCKETS.length) {
      if (n === 0) return 1;
      this.nextResize = FAST_BUCKETS[n];
      return FAST_BUCKETS[n];
    }
    let lo = 6;
    let hi = PRIMES.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (PRIMES[mid] < n) lo = mid + 1;
      else hi = mid;
    }
    if (PRIMES[lo] < n) throw new RangeError('symbol cache larger than the emulated bucket table');
    this.nextResize = PRIMES[lo];
    return PRIMES[lo];
  }

  private grow(id: number): void {
    if (id < this.next.length) return;
    const n = Math.max(id + 1, this.next.length * 2);
    const next = new Int32Array(n).fill(-1);
    next.set(this.next);
    this.next = next;
    const hi = new Float64Array(n);
    hi.set(this.keyHi);
    this.keyHi = hi;
    const lo = new Float64Array(n);
    lo.set(this.keyLo);
    this.keyLo = lo;
  }

  private rehash(count: number): void {
    const buckets = new Int32Array(count).fill(-1);
    let p = this.next[0];
    this.next[0] = -1;
    let beginBucket = 0;
    while (p !== -1) {
      const after = this.next[p];
      const b = this.bucketOf(p, count);
      if (buckets[b] === -1) {
        this.next[p] = this.next[0];
        this.next[0] = p;
        buckets[b] = 0;
        if (this.next[p] !== -1) buckets[beginBucket] = p;
        beginBucket = b;
      } else {
        this.next[p] = this.next[buckets[b]];
        this.next[buckets[b]] = p;
      }
      p = after;
    }
    this.buckets = buckets;
    this.bucketCount = count;
  }

  /** Insert a new element with key `key` (a uint64). */
  insert(id: number, key: bigint): void {
    this.grow(id);
    this.keyHi[id] = Number(key >> 32n);
    this.keyLo[id] = Number(key & 0xffffffffn);
    // _M_need_rehash(bucket_count, size, 1)
    if (this.count + 1 > this.nextResize) {
      const minBuckets = Math.max(this.count + 1, this.nextResize ? 0 : 11);
      if (minBuckets >= this.bucketCount) this.rehash(this.nextBucketCount(Math.max(Math.floor(minBuckets) + 1, this.bucketCount * 2)));
      else this.nextResize = this.bucketCount;
    }
    const b = this.bucketOf(id);
    if (this.buckets[b] !== -1) {
      this.next[id] = this.next[this.buckets[b]];
      this.next[this.buckets[b]] = id;
    } else {
      this.next[id] = this.next[0];
      this.next[0] = id;
      if (this.next[id] !== -1) this.buckets[this.bucketOf(this.next[id])] = id;
      this.buckets[b] = 0;
    }
    this.count++;
  }

  /** Erase an element that is present. */
  erase(id: number): void {
    const b = this.bucketOf(id);
    let prev = this.buckets[b];
    while (this.next[prev] !== id) prev = this.next[prev];
    const after = this.next[id];
    if (prev === this.buckets[b]) {
      const afterBucket = after !== -1 ? this.bucketOf(after) : 0;
      if (after === -1 || afterBucket !== b) {
        if (after !== -1) this.buckets[afterBucket] = this.buckets[b];
        if (this.buckets[b] === 0) this.next[0] = after;
        this.buckets[b] = -1;
      }
    } else if (after !== -1) {
      const afterBucket = this.bucketOf(after);
      if (afterBucket !== b) this.buckets[afterBucket] = prev;
    }
    this.next[prev] = after;
    this.next[id] = -1;
    this.count--;
  }

  /** Ids in iteration order (a view, valid until the next call). */
  orderedIds(): Int32Array {
    if (this.order.length < this.count) this.order = new Int32Array(this.count * 2);
    let n = 0;
    for (let p = this.next[0]; p !== -1; p = this.next[p]) this.order[n++] = p;
    return this.order.subarray(0, n);
  }
}

/**
 * The first `size` elements std::partial_sort(v, v + size, v.end(), comp)
 * leaves in place (as a set: their order is not needed), following
 * libstdc++'s __heap_select exactly, so ties fall the same way.
 */
export function partialSortSelect<T>(v: T[], size: number, comp: (a: T, b: T) => boolean): T[] {
  const first = v;
  const adjustHeap = (hole: number, len: number, value: T): void => {
    const top = hole;
    let second = hole;
    while (second < Math.floor((len - 1) / 2)) {
      second = 2 * (second + 1);
      if (comp(first[second], first[second - 1])) second--;
      first[hole] = first[second];
      hole = second;
    }
    if ((len & 1) === 0 && second === Math.floor((len - 2) / 2)) {
      second = 2 * (second + 1);
      first[hole] = first[second - 1];
      hole = second - 1;
    }
    let parent = Math.floor((hole - 1) / 2);
    while (hole > top && comp(first[parent], value)) {
      first[hole] = first[parent];
      hole = parent;
      parent = Math.floor((hole - 1) / 2);
    }
    first[hole] = value;
  };
  if (size >= 2) {
    for (let parent = Math.floor((size - 2) / 2); parent >= 0; parent--) adjustHeap(parent, size, first[parent]);
  }
  for (let i = size; i < v.length; i++) {
    if (size > 0 && comp(v[i], first[0])) {
      const value = v[i];
      v[i] = first[0];
      adjustHeap(0, size, value);
    }
  }
  return v.slice(0, size);
}
