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

/** An occurrence of a pair, (word, left index, right index), packed in one number: words < 2^21, indexes < 2^16. */
const POS_WORD = 2 ** 32;
const POS_LEFT = 2 ** 16;
function encodePos(word: number, left: number, right: number): number {
  return word * POS_WORD + left * POS_LEFT + right;
}
/** The word, left and right index of an occurrence packed by encodePos (no array: these run per occurrence). */
function posWord(p: number): number {
  return Math.floor(p / POS_WORD);
}
function posLeft(p: number): number {
  return Math.floor(p / POS_LEFT) % POS_LEFT;
}
function posRight(p: number): number {
  return p % POS_LEFT;
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
 * Each character's count over the sentences, spaces and NULs left out (a
 * table for the BMP, a map beyond it: this loop sees every character).
 */
function countCharacters(sentences: Array<[string, number]>): Map<number, number> {
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
  return charCounts;
}

/**
 * The sentences' words with their counts, as SentencePiece's trainer sees
 * them: split before each "▁", characters outside the alphabet replaced by
 * UNK_CHAR, identical words merged; by count desc, then string asc.
 */
function countWords(sentences: Array<[string, number]>, alphabet: Map<number, number>): Array<[string, number]> {
  const inAlphabet = new Uint8Array(0x10000);
  for (const c of alphabet.keys()) if (c < 0x10000) inAlphabet[c] = 1;
  const wordCounts = new Map<string, number>();
  const addWord = (w: string, rare: boolean, n: number): void => {
    const word = rare ? withUnknowns(w, alphabet) : w;
    wordCounts.set(word, (wordCounts.get(word) ?? 0) + n);
  };
  for (const [s, n] of sentences) {
    let start = 0;
    let rare = false;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === WS_CHAR && i > start) {
        addWord(s.slice(start, i), rare, n);
        start = i;
        rare = false;
      }
      if (c >= 0xd800 && c < 0xdc00) {
        if (!alphabet.has(s.codePointAt(i++)!)) rare = true;
      } else if (inAlphabet[c] === 0) {
        rare = true;
      }
    }
    if (s.length > start) addWord(s.slice(start), rare, n);
  }
  const words = sortedByCount([...wordCounts.entries()], compareCodePoints);
  if (words.length >= 2 ** 21) throw new RangeError('too many distinct words for the BPE trainer (over 2 million)');
  return words;
}

/** The index of the next (or previous) symbol still in `row` after (before) i, or -1. */
function nextIndex(row: Array<Sym | null>, i: number): number {
  for (let k = i + 1; k < row.length; k++) if (row[k] !== null) return k;
  return -1;
}
function prevIndex(row: Array<Sym | null>, i: number): number {
  for (let k = i - 1; k >= 0; k--) if (row[k] !== null) return k;
  return -1;
}

/**
 * The merge loop's state: every word as a row of symbols, the symbols made so
 * far (SentencePiece's symbol cache, in its order), and the candidate set
 * (its active_symbols_: a membership flag, the members, and a heap, so the
 * best is found without scanning every candidate at each merge).
 */
class BpeMerger {
  private readonly byId: Sym[] = [];
  private readonly cache = new UnorderedMapOrder();
  private readonly charSyms = new Map<number, Sym>();
  private readonly pairSyms = new Map<number, Sym>();
  private readonly invalidPairs = new Set<number>();
  /** symbols[w][i]: the i-th symbol of word w; null where a merge took it into its left neighbour. */
  private readonly symbols: Array<Array<Sym | null>>;
  private readonly wordFreq: number[];
  private active: Sym[] = [];
  private readonly touched: Sym[] = [];
  private readonly heap = new CandidateHeap();

  constructor(
    words: Array<[string, number]>,
    private readonly alphabet: Map<number, number>,
    private readonly opts: BpeOptions,
  ) {
    this.symbols = words.map(([w]) => Array.from(w, (ch) => this.charSym(ch.codePointAt(0)!)));
    this.wordFreq = words.map(([, n]) => n);
    for (let w = 0; w < this.symbols.length; w++) for (let i = 1; i < this.symbols[w].length; i++) this.addPair(w, i - 1, i);
  }

  /**
   * Up to `budget` merged pieces, best first: every 100 merges the candidates
   * are re-chosen (updateActive); each step merges the best candidate
   * everywhere, or drops it when its string is already a piece.
   */
  async merge(budget: number): Promise<Array<{ piece: string; score: number }>> {
    const pieces: Array<{ piece: string; score: number }> = [];
    const seen = new Set<string>();
    let lastYield = performance.now();
    while (pieces.length < budget) {
      if (pieces.length % 100 === 0) {
        this.updateActive();
        this.opts.onProgress?.(pieces.length, budget);
        // Merging can take minutes: let a Ctrl-C be handled (it cleans up and exits) instead of waiting for the end.
        if (performance.now() - lastYield > 100) {
          await new Promise((resolve) => setImmediate(resolve));
          lastYield = performance.now();
        }
      }
      const best = this.popBest();
      if (best === null) break;
      if (!seen.has(best.piece)) {
        seen.add(best.piece);
        pieces.push({ piece: best.piece, score: -pieces.length });
        this.mergeEverywhere(best);
      }
      this.forget(best);
      best.active = false;
    }
    this.opts.onProgress?.(pieces.length, budget);
    for (const s of this.active) s.active = false;
    return pieces;
  }

  /** The best candidate, after recomputing those whose frequency may have changed (as the scan in SentencePiece does). */
  private popBest(): Sym | null {
    for (const s of this.touched) {
      s.touched = false;
      if (!s.active) continue;
      this.computeFreq(s);
      this.heap.push(s);
    }
    this.touched.length = 0;
    return this.heap.popBest();
  }

  /** Replace every occurrence of best's pair by best, left to right within each word, updating the neighbouring pairs. */
  private mergeEverywhere(best: Sym): void {
    const positions = best.sorted ? best.positions.slice() : best.positions.slice().sort((a, b) => a - b);
    for (const p of positions) {
      const w = posWord(p);
      const l = posLeft(p);
      const r = posRight(p);
      const row = this.symbols[w];
      if (row[l] === null) continue;
      const next = nextIndex(row, r);
      const prev = prevIndex(row, l);
      this.resetFreq(w, prev, l, best);
      this.resetFreq(w, r, next, best);
      row[l] = best;
      row[r] = null;
      this.addPair(w, prev, l);
      this.addPair(w, l, next);
    }
  }

  /** Re-choose the candidates: the top max(1000, 5% of all cached symbols) pairs by frequency, in the cache's order. */
  private updateActive(): void {
    const bigrams: Sym[] = [];
    const ids = this.cache.orderedIds();
    for (let i = 0; i < ids.length; i++) {
      const s = this.byId[ids[i] - 1];
      if (s.left === null) continue;
      this.computeFreq(s);
      bigrams.push(s);
    }
    const size = Math.min(Math.max(1000, Math.trunc(Math.fround(Math.fround(this.cache.size) * Math.fround(0.05)))), bigrams.length);
    for (const s of this.active) s.active = false;
    this.active = [];
    for (const s of partialSortSelect(bigrams, size, (a, b) => a.freq > b.freq)) this.activate(s);
    this.heap.clear();
  }

  /** A pair's frequency, recomputed (only when it was reset to 0) from its occurrences still in place. */
  private computeFreq(s: Sym): void {
    if (s.freq > 0) return;
    const pos = s.positions;
    // Occurrences are visited in (word, left) order, as in SentencePiece's std::set.
    if (!s.sorted) {
      pos.sort((a, b) => a - b);
      s.sorted = true;
    }
    let f = 0;
    let keep = 0;
    let prevW = -1;
    let prevR = -1;
    for (let i = 0; i < pos.length; i++) {
      const p = pos[i];
      const w = posWord(p);
      const l = posLeft(p);
      const r = posRight(p);
      const row = this.symbols[w];
      if (row[l] !== s.left || row[r] !== s.right) continue;
      // Overlaps the occurrence just counted ("aaa" holds one "aa"): dropped.
      if (w === prevW && l === prevR) continue;
      f += this.wordFreq[w];
      prevW = w;
      prevR = r;
      pos[keep++] = p;
    }
    pos.length = keep;
    s.freq = f;
  }

  /** Record the occurrence of the pair at (w, l, r), if it may be a piece, and make the pair a candidate. */
  private addPair(w: number, l: number, r: number): void {
    if (l < 0 || r < 0) return;
    const s = this.pairSym(this.symbols[w][l], this.symbols[w][r]);
    if (!s) return;
    this.activate(s);
    const p = encodePos(w, l, r);
    const pos = s.positions;
    if (pos.length > 0 && pos[pos.length - 1] > p) s.sorted = false;
    pos.push(p);
  }

  /** The pair at (w, l, r) loses an occurrence to a merge: its frequency is recomputed when next needed. */
  private resetFreq(w: number, l: number, r: number, best: Sym): void {
    if (l < 0 || r < 0) return;
    const s = this.pairSym(this.symbols[w][l], this.symbols[w][r]);
    if (s && s !== best) {
      s.freq = 0;
      this.touch(s);
    }
  }

  private touch(s: Sym): void {
    if (!s.touched) {
      s.touched = true;
      this.touched.push(s);
    }
  }

  private activate(s: Sym): void {
    if (!s.active) {
      s.active = true;
      this.active.push(s);
      this.touch(s);
    }
  }

  private remember(s: Sym): Sym {
    this.byId.push(s);
    this.cache.insert(s.id + 1, s.fp);
    return s;
  }

  private charSym(c: number): Sym {
    let s = this.charSyms.get(c);
    if (!s) {
      s = this.remember(new Sym(this.byId.length, [c], null, null, c === UNK_CHAR, BigInt(c)));
      s.freq = this.alphabet.get(c) ?? 1;
      this.charSyms.set(c, s);
    }
    return s;
  }

  /** The symbol of l followed by r, made on first sight; null when the pair may not be a piece. */
  private pairSym(l: Sym | null, r: Sym | null): Sym | null {
    if (!l || !r || l.isUnk || r.isUnk) return null;
    const key = l.id * 2 ** 26 + r.id;
    const found = this.pairSyms.get(key);
    if (found) return found;
    if (this.invalidPairs.has(key)) return null;
    const chars = l.chars.concat(r.chars);
    if (!isValidPiece(chars, this.opts)) {
      this.invalidPairs.add(key);
      return null;
    }
    const s = this.remember(new Sym(this.byId.length, chars, l, r, false, fingerprintCat(l.fp, r.fp)));
    this.pairSyms.set(key, s);
    return s;
  }

  private forget(s: Sym): void {
    this.pairSyms.delete(s.left!.id * 2 ** 26 + s.right!.id);
    this.cache.erase(s.id + 1);
  }
}

/**
 * Train on normalized sentences (with "▁" for spaces and meta pieces already
 * replaced by "\t"), each with a count: the alphabet, the words, the merges,
 * then the alphabet's characters as pieces after the merged ones.
 */
export async function trainBpe(sentences: Array<[string, number]>, opts: BpeOptions): Promise<BpeResult> {
  const alphabet = chooseAlphabet(countCharacters(sentences), opts.characterCoverage);
  const merger = new BpeMerger(countWords(sentences, alphabet), alphabet, opts);
  const mergeBudget = opts.pieceBudget - alphabet.size;
  const pieces = await merger.merge(mergeBudget);
  const merges = pieces.length;
  for (const [c] of sortedByCount([...alphabet.entries()], (a, b) => a - b)) {
    pieces.push({ piece: String.fromCodePoint(c), score: -pieces.length });
  }
  return { pieces, alphabetSize: alphabet.size, shortBy: Math.max(0, mergeBudget - merges) };
}
