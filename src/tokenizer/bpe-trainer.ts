/**
 * SentencePiece's BPE trainer, step for step as in release 0.1.97
 * (trainer_interface.cc LoadSentences/SplitSentencesByWhitespace and
 * bpe_model_trainer.cc), so that on the same sentences and settings it picks
 * the same pieces in the same order and spm_train's .vocab is reproduced.
 *
 * The quirks that decide the output are kept on purpose:
 * - a pair's frequency is recomputed only after it was reset to 0, so a count
 *   can lag behind new occurrences until a neighbouring merge resets it;
 * - every 100 merges the candidates are re-chosen as the top
 *   max(1000, 5% of all cached symbols) pairs by frequency, ties falling as
 *   libstdc++'s hash-map order and partial_sort make them fall (cxx-order.ts);
 * - best = highest frequency, then fewer code points, then smaller string;
 * - overlapping occurrences count once ("aaa" holds one "aa"; 0.1.99 counts two),
 *   and the overlapping one is forgotten for good.
 */
import { fingerprintCat, partialSortSelect, UnorderedMapOrder } from './cxx-order.js';
import { scriptOf, Script } from './unicode-script.js';

export const WS_CHAR = 0x2581; // "▁"
export const UNK_CHAR = 0x2585; // "▅", stands for characters outside the alphabet
const UPP_BOUNDARY = 0x09; // "\t", what meta pieces are replaced by in training text

export interface BpeOptions {
  /** Pieces to produce besides the meta pieces (vocab_size - meta pieces): merges, then the alphabet. */
  pieceBudget: number;
  characterCoverage: number;
  maxSentencepieceLength: number;
  splitByUnicodeScript: boolean;
  splitByNumber: boolean;
  splitDigits: boolean;
  onProgress?: (merges: number, total: number) => void;
}

export interface BpeResult {
  /** Merged pieces then the alphabet, with scores -index. */
  pieces: Array<{ piece: string; score: number }>;
  alphabetSize: number;
  /** How many pieces short of the budget the text fell (no valid pair left to merge); 0 when filled. */
  shortBy: number;
}

/** Compare strings by code point (= UTF-8 byte order, as std::string compares). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca !== cb) {
      // Surrogates (astral code points) sort after U+E000..U+FFFF.
      if (ca >= 0xd800 && cb >= 0xd800) {
        ca += ca < 0xe000 ? 0x2000 : -0x800;
        cb += cb < 0xe000 ? 0x2000 : -0x800;
      }
      return ca - cb;
    }
  }
  return a.length - b.length;
}

/** std::map-like Sorted(): by count descending, then key ascending. */
function sortedByCount<K>(entries: Array<[K, number]>, cmp: (a: K, b: K) => number): Array<[K, number]> {
  return entries.sort((x, y) => (y[1] !== x[1] ? y[1] - x[1] : cmp(x[0], y[0])));
}

function isDecimal(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0xff10 && c <= 0xff19);
}

/** IsValidSentencePiece for split_by_whitespace=true, whitespace as prefix. */
function isValidPiece(chars: number[], opts: BpeOptions): boolean {
  if (chars.length === 0 || chars.length > opts.maxSentencepieceLength) return false;
  const ANY = -1;
  let prev = ANY;
  for (let pos = 0; pos < chars.length; pos++) {
    const c = chars[pos];
    if (c === UNK_CHAR || c === 0 || c === UPP_BOUNDARY || c === 0x20) return false;
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    if (c === WS_CHAR) {
      if (pos > 0) return false;
      continue;
    }
    let s: number = scriptOf(c);
    if (s === Script.Hiragana || s === Script.Katakana || c === 0x30fc) s = Script.Han;
    else if (s === Script.Inherited) s = prev;
    if (!opts.splitByNumber && isDecimal(c)) s = ANY;
    if (opts.splitDigits && isDecimal(c) && chars.length > 1) return false;
    if (opts.splitByUnicodeScript && s !== ANY && prev !== ANY && prev !== s) return false;
    prev = s;
  }
  return true;
}

class Sym {
  freq = 0;
  /** Encoded (word, left, right) occurrences; may hold stale ones until recomputed. */
  positions: number[] = [];
  /** Whether `positions` is in ascending order. */
  sorted = true;
  /** Member of the candidate set. */
  active = false;
  /** Activated or reset since the candidates' order was last brought up to date. */
  touched = false;
  private str: string | null = null;
  constructor(
    readonly id: number,
    readonly chars: number[],
    readonly left: Sym | null,
    readonly right: Sym | null,
    readonly isUnk: boolean,
    /** SentencePiece's fingerprint: the code point, or FingerprintCat of the halves. */
    readonly fp: bigint,
  ) {}
  get piece(): string {
    this.str ??= String.fromCodePoint(...this.chars);
    return this.str;
  }
}

/**
 * Candidates ordered as SentencePiece picks the best: highest frequency (as
 * each had when pushed), then fewer code points, then the smaller string.
 * An entry whose symbol left the candidates or changed frequency is skipped.
 */
class CandidateHeap {
  private syms: Sym[] = [];
  private freqs: number[] = [];

  clear(): void {
    this.syms = [];
    this.freqs = [];
  }

  private above(i: number, j: number): boolean {
    const a = this.syms[i];
    const b = this.syms[j];
    const fa = this.freqs[i];
    const fb = this.freqs[j];
    if (fa !== fb) return fa > fb;
    // Equal snapshots: fewer code points first, then the smaller string (never the live frequency).
    if (a.chars.length !== b.chars.length) return a.chars.length < b.chars.length;
    return a !== b && compareCodePoints(a.piece, b.piece) < 0;
  }

  private swap(i: number, j: number): void {
    [this.syms[i], this.syms[j]] = [this.syms[j], this.syms[i]];
    [this.freqs[i], this.freqs[j]] = [this.freqs[j], this.freqs[i]];
  }

  push(s: Sym): void {
    let i = this.syms.length;
    this.syms.push(s);
    this.freqs.push(s.freq);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): void {
    const last = this.syms.length - 1;
    this.swap(0, last);
    this.syms.pop();
    this.freqs.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < this.syms.length && this.above(l, top)) top = l;
      if (r < this.syms.length && this.above(r, top)) top = r;
      if (top === i) return;
      this.swap(i, top);
      i = top;
    }
  }

  /** The best current candidate (removed from the heap), or null. */
  popBest(): Sym | null {
    while (this.syms.length > 0) {
      const s = this.syms[0];
      const f = this.freqs[0];
      this.pop();
      if (s.active && s.freq === f) return s;
    }
    return null;
  }
}

const POS_WORD = 2 ** 32;
const POS_LEFT = 2 ** 16;
function encodePos(word: number, left: number, right: number): number {
  return word * POS_WORD + left * POS_LEFT + right;
}

/**
 * Characters kept by the coverage rule, as SentencePiece chooses them:
 * by count desc, code point asc, while the covered share (as a float) is
 * below the coverage. The tab (meta-piece boundary) is counted, never kept.
 */
export function chooseAlphabet(charCounts: Map<number, number>, coverage: number): Map<number, number> {
  let all = 0;
  for (const n of charCounts.values()) all += n;
  const kept = new Map<number, number>();
  let acc = 0;
  const cov = Math.fround(coverage);
  for (const [c, n] of sortedByCount([...charCounts.entries()], (a, b) => a - b)) {
    if (Math.fround(acc / all) >= cov) break;
    acc += n;
    if (c === UPP_BOUNDARY) continue;
    kept.set(c, n);
  }
  return kept;
}

function withUnknowns(word: string, alphabet: Map<number, number>): string {
  let out = '';
  for (const ch of word) out += alphabet.has(ch.codePointAt(0)!) ? ch : String.fromCodePoint(UNK_CHAR);
  return out;
}

/**
 * Train on normalized sentences (with "▁" for spaces and meta pieces already
 * replaced by "\t"), each with a count.
 */
export async function trainBpe(sentences: Array<[string, number]>, opts: BpeOptions): Promise<BpeResult> {
  // Character counts and the alphabet (a table for the BMP, a map beyond it: this loop sees every character).
  const bmpCounts = new Float64Array(0x10000);
  const astralCounts = new Map<number, number>();
  for (const [s, n] of sentences) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00) {
        const cp = s.codePointAt(i++)!;
        astralCounts.set(cp, (astralCounts.get(cp) ?? 0) + n);
      } else {
        bmpCounts[c] += n;
      }
    }
  }
  const charCounts = new Map<number, number>(astralCounts);
  for (let c = 1; c < 0x10000; c++) if (bmpCounts[c] > 0 && c !== 0x20) charCounts.set(c, bmpCounts[c]);
  const alphabet = chooseAlphabet(charCounts, opts.characterCoverage);
  const inAlphabet = new Uint8Array(0x10000);
  for (const c of alphabet.keys()) if (c < 0x10000) inAlphabet[c] = 1;

  // Words: split before each "▁", rare characters replaced by UNK_CHAR, identical words merged.
  const wordCounts = new Map<string, number>();
  const addWord = (w: string, n: number): void => {
    wordCounts.set(w, (wordCounts.get(w) ?? 0) + n);
  };
  for (const [s, n] of sentences) {
    let start = 0;
    let rare = false;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === WS_CHAR && i > start) {
        addWord(rare ? withUnknowns(s.slice(start, i), alphabet) : s.slice(start, i), n);
        start = i;
        rare = false;
      }
      if (c >= 0xd800 && c < 0xdc00) {
        if (!alphabet.has(s.codePointAt(i++)!)) rare = true;
      } else if (inAlphabet[c] === 0) {
        rare = true;
      }
    }
    if (s.length > start) addWord(rare ? withUnknowns(s.slice(start), alphabet) : s.slice(start), n);
  }
  const words = sortedByCount([...wordCounts.entries()], compareCodePoints);
  wordCounts.clear();
  if (words.length >= 2 ** 21) throw new RangeError('too many distinct words for the BPE trainer (over 2 million)');

  // Symbols, and the order of SentencePiece's symbol cache (characters and live pairs).
  const byId: Sym[] = [];
  const cache = new UnorderedMapOrder();
  const charSyms = new Map<number, Sym>();
  const pairSyms = new Map<number, Sym>();
  const invalidPairs = new Set<number>();
  const remember = (s: Sym): Sym => {
    byId.push(s);
    cache.insert(s.id + 1, s.fp);
    return s;
  };
  const charSym = (c: number): Sym => {
    let s = charSyms.get(c);
    if (!s) {
      s = remember(new Sym(byId.length, [c], null, null, c === UNK_CHAR, BigInt(c)));
      s.freq = alphabet.get(c) ?? 1;
      charSyms.set(c, s);
    }
    return s;
  };
  const pairSym = (l: Sym | null, r: Sym | null): Sym | null => {
    if (!l || !r || l.isUnk || r.isUnk) return null;
    const key = l.id * 2 ** 26 + r.id;
    const found = pairSyms.get(key);
    if (found) return found;
    if (invalidPairs.has(key)) return null;
    const chars = l.chars.concat(r.chars);
    if (!isValidPiece(chars, opts)) {
      invalidPairs.add(key);
      return null;
    }
    const s = remember(new Sym(byId.length, chars, l, r, false, fingerprintCat(l.fp, r.fp)));
    pairSyms.set(key, s);
    return s;
  };
  const forget = (s: Sym): void => {
    pairSyms.delete(s.left!.id * 2 ** 26 + s.right!.id);
    cache.erase(s.id + 1);
  };

  const symbols: Array<Array<Sym | null>> = words.map(([w]) => Array.from(w, (ch) => charSym(ch.codePointAt(0)!)));
  const wordFreq = words.map(([, n]) => n);

  // The candidate set (SentencePiece's active_symbols_): a membership flag, the members, and a heap,
  // so the best is found without scanning every candidate at each merge.
  let active: Sym[] = [];
  const touched: Sym[] = [];
  const touch = (s: Sym): void => {
    if (!s.touched) {
      s.touched = true;
      touched.push(s);
    }
  };
  const activate = (s: Sym): void => {
    if (!s.active) {
      s.active = true;
      active.push(s);
      touch(s);
    }
  };
  const addPair = (w: number, l: number, r: number): void => {
    if (l < 0 || r < 0) return;
    const s = pairSym(symbols[w][l], symbols[w][r]);
    if (s) {
      activate(s);
      const p = encodePos(w, l, r);
      const pos = s.positions;
      if (pos.length > 0 && pos[pos.length - 1] > p) s.sorted = false;
      pos.push(p);
    }
  };
  const resetFreq = (w: number, l: number, r: number, best: Sym): void => {
    if (l < 0 || r < 0) return;
    const s = pairSym(symbols[w][l], symbols[w][r]);
    if (s && s !== best) {
      s.freq = 0;
      touch(s);
    }
  };
  const computeFreq = (s: Sym): void => {
    if (s.freq > 0) return;
    let f = 0;
    let keep = 0;
    const pos = s.positions;
    // Occurrences are visited in (word, left) order, as in SentencePiece's std::set.
    if (!s.sorted) {
      pos.sort((a, b) => a - b);
      s.sorted = true;
    }
    let prevW = -1;
    let prevR = -1;
    for (let i = 0; i < pos.length; i++) {
      const p = pos[i];
      const w = Math.floor(p / POS_WORD);
      const l = Math.floor(p / POS_LEFT) % POS_LEFT;
      const r = p % POS_LEFT;
      const row = symbols[w];
      if (row[l] === s.left && row[r] === s.right) {
        // Overlaps the occurrence just counted ("aaa" holds one "aa"): dropped.
        if (w === prevW && l === prevR) continue;
        f += wordFreq[w];
        prevW = w;
        prevR = r;
        pos[keep++] = p;
      }
    }
    pos.length = keep;
    s.freq = f;
  };
  const nextIndex = (row: Array<Sym | null>, i: number): number => {
    for (let k = i + 1; k < row.length; k++) if (row[k] !== null) return k;
    return -1;
  };
  const prevIndex = (row: Array<Sym | null>, i: number): number => {
    for (let k = i - 1; k >= 0; k--) if (row[k] !== null) return k;
    return -1;
  };

  for (let w = 0; w < symbols.length; w++) for (let i = 1; i < symbols[w].length; i++) addPair(w, i - 1, i);

  const heap = new CandidateHeap();

  const updateActive = (): void => {
    const bigrams: Sym[] = [];
    const ids = cache.orderedIds();
    for (let i = 0; i < ids.length; i++) {
      const s = byId[ids[i] - 1];
      if (s.left === null) continue;
      computeFreq(s);
      bigrams.push(s);
    }
    const size = Math.min(Math.max(1000, Math.trunc(Math.fround(Math.fround(cache.size) * Math.fround(0.05)))), bigrams.length);
    for (const s of active) s.active = false;
    active = [];
    for (const s of partialSortSelect(bigrams, size, (a, b) => a.freq > b.freq)) activate(s);
    heap.clear();
  };

  const mergeBudget = opts.pieceBudget - alphabet.size;
  const pieces: Array<{ piece: string; score: number }> = [];
  const seen = new Set<string>();
  let lastYield = performance.now();
  while (pieces.length < mergeBudget) {
    if (pieces.length % 100 === 0) {
      updateActive();
      opts.onProgress?.(pieces.length, mergeBudget);
      // Merging can take minutes: let a Ctrl-C be handled (it cleans up and exits) instead of waiting for the end.
      if (performance.now() - lastYield > 100) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
    }
    // Candidates whose frequency may have changed are recomputed (as the scan in SentencePiece does).
    for (const s of touched) {
      s.touched = false;
      if (!s.active) continue;
      computeFreq(s);
      heap.push(s);
    }
    touched.length = 0;
    const best = heap.popBest();
    if (best === null) break;
    if (seen.has(best.piece)) {
      forget(best);
      best.active = false;
      continue;
    }
    seen.add(best.piece);
    pieces.push({ piece: best.piece, score: -pieces.length });

    // Merge every occurrence, left to right within each word.
    const positions = best.sorted ? best.positions.slice() : best.positions.slice().sort((a, b) => a - b);
    for (const p of positions) {
      const w = Math.floor(p / POS_WORD);
      const l = Math.floor(p / POS_LEFT) % POS_LEFT;
      const r = p % POS_LEFT;
      const row = symbols[w];
      if (row[l] === null) continue;
      const next = nextIndex(row, r);
      const prev = prevIndex(row, l);
      resetFreq(w, prev, l, best);
      resetFreq(w, r, next, best);
      row[l] = best;
      row[r] = null;
      addPair(w, prev, l);
      addPair(w, l, next);
    }
    forget(best);
    best.active = false;
  }
  opts.onProgress?.(pieces.length, mergeBudget);
  for (const s of active) s.active = false;

  const merges = pieces.length;
  for (const [c] of sortedByCount([...alphabet.entries()], (a, b) => a - b)) {
    pieces.push({ piece: String.fromCodePoint(c), score: -pieces.length });
  }
  return { pieces, alphabetSize: alphabet.size, shortBy: Math.max(0, mergeBudget - merges) };
}
