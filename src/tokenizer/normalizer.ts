/**
 * SentencePiece's text normalizer (normalizer.cc), on UTF-8 bytes:
 * user-defined symbols are kept as they are, everything else is rewritten by
 * the longest rule of the precompiled charsmap (a Darts double-array trie;
 * nmt_nfkc = NFKC plus whitespace/control rules), or copied when no rule
 * matches; then spaces are trimmed/collapsed, a dummy prefix added, and each
 * space becomes "▁" (U+2581).
 */
import type { NormalizerSpec } from './model-proto.js';

const SPACE = 0x20;
const WS_BYTES = [0xe2, 0x96, 0x81]; // "▁"
const REPLACEMENT = [0xef, 0xbf, 0xbd]; // U+FFFD

/** Darts-clone double array over the charsmap blob: <trie size u32><units u32[]><NUL-terminated strings>. */
class CharsMap {
  private readonly units: Uint32Array;
  private readonly strings: Uint8Array;

  constructor(blob: Uint8Array) {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    if (blob.length <= 4) throw new Error('precompiled charsmap is broken');
    const trieSize = view.getUint32(0, true);
    if (trieSize >= blob.length) throw new Error('precompiled charsmap: trie size exceeds the blob');
    this.units = new Uint32Array(trieSize / 4);
    for (let i = 0; i < this.units.length; i++) this.units[i] = view.getUint32(4 + i * 4, true);
    this.strings = blob.subarray(4 + trieSize);
  }

  /** Offset of the replacement of the last match. */
  matchOffset = 0;

  /** Bytes matched by the longest rule at `pos` (its replacement at `matchOffset`), 0 for none. */
  longestMatch(input: Uint8Array, pos: number, end: number): number {
    const units = this.units;
    let unit = units[0];
    let node = (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    let best = 0;
    for (let i = pos; i < end; i++) {
      const key = input[i];
      node ^= key;
      unit = units[node];
      if (unit === undefined || (unit & 0x800000ff) !== key) return best;
      node ^= (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
      if ((unit >>> 8) & 1) {
        best = i + 1 - pos;
        this.matchOffset = units[node] & 0x7fffffff;
      }
    }
    return best;
  }

  replacement(offset: number): Uint8Array {
    let e = offset;
    while (this.strings[e] !== 0) e++;
    return this.strings.subarray(offset, e);
  }
}

/** Length of the valid UTF-8 character at `pos`, or 0 when malformed (SentencePiece's IsValidDecodeUTF8). */
function utf8CharLength(b: Uint8Array, pos: number, end: number): number {
  const c = b[pos];
  if (c < 0x80) return 1;
  const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (need === 0 || pos + need > end) return 0;
  for (let k = 1; k < need; k++) if ((b[pos + k] & 0xc0) !== 0x80) return 0;
  let cp = need === 2 ? c & 0x1f : need === 3 ? c & 0x0f : c & 0x07;
  for (let k = 1; k < need; k++) cp = (cp << 6) | (b[pos + k] & 0x3f);
  const min = need === 2 ? 0x80 : need === 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return need;
}

/** Byte trie of the user-defined symbols, matched before the charsmap (PrefixMatcher). */
class SymbolMatcher {
  private readonly symbols: Uint8Array[];
  constructor(symbols: string[]) {
    this.symbols = symbols.map((s) => new TextEncoder().encode(s));
  }
  /** Length of the longest symbol at `pos`, 0 for none. */
  match(input: Uint8Array, pos: number, end: number): number {
    let best = 0;
    for (const s of this.symbols) {
      if (s.length <= best || pos + s.length > end) continue;
      let k = 0;
      while (k < s.length && input[pos + k] === s[k]) k++;
      if (k === s.length) best = s.length;
    }
    return best;
  }
}

export class Normalizer {
  private readonly charsMap: CharsMap | null;
  private readonly userSymbols: SymbolMatcher | null;
  private readonly addDummyPrefix: boolean;
  private readonly removeExtraWhitespaces: boolean;
  private readonly escapeWhitespaces: boolean;
  private out = new Uint8Array(1 << 16);
  private len = 0;

  constructor(spec: NormalizerSpec, userDefinedSymbols: string[] = []) {
    const blob = spec.precompiledCharsmap;
    this.charsMap = blob && blob.length > 0 ? new CharsMap(blob) : null;
    this.userSymbols = userDefinedSymbols.length > 0 ? new SymbolMatcher(userDefinedSymbols) : null;
    this.addDummyPrefix = spec.addDummyPrefix ?? true;
    this.removeExtraWhitespaces = spec.removeExtraWhitespaces ?? true;
    this.escapeWhitespaces = spec.escapeWhitespaces ?? true;
  }

  /**
   * One prefix step: the bytes `input[pos..]` turn into. Returns the number
   * of input bytes consumed; the output is `src[from..to]`, set in `piece`.
   */
  private prefix(input: Uint8Array, pos: number, end: number, piece: { src: Uint8Array; from: number; to: number }): number {
    const user = this.userSymbols?.match(input, pos, end) ?? 0;
    if (user > 0) {
      piece.src = input;
      piece.from = pos;
      piece.to = pos + user;
      return user;
    }
    const matched = this.charsMap ? this.charsMap.longestMatch(input, pos, end) : 0;
    if (matched > 0) {
      const rep = this.charsMap!.replacement(this.charsMap!.matchOffset);
      piece.src = rep;
      piece.from = 0;
      piece.to = rep.length;
      return matched;
    }
    const n = utf8CharLength(input, pos, end);
    if (n === 0) {
      piece.src = REPLACEMENT_BYTES;
      piece.from = 0;
      piece.to = 3;
      return 1;
    }
    piece.src = input;
    piece.from = pos;
    piece.to = pos + n;
    return n;
  }

  private push(byte: number): void {
    if (this.len === this.out.length) {
      const bigger = new Uint8Array(this.out.length * 2);
      bigger.set(this.out);
      this.out = bigger;
    }
    this.out[this.len++] = byte;
  }

  private pushSpace(): void {
    if (this.escapeWhitespaces) for (const b of WS_BYTES) this.push(b);
    else this.push(SPACE);
  }

  /** Normalize UTF-8 bytes; the result is a view valid until the next call. */
  normalizeBytes(input: Uint8Array): Uint8Array {
    this.len = 0;
    let pos = 0;
    const end = input.length;
    const piece = { src: input, from: 0, to: 0 };
    if (this.removeExtraWhitespaces) {
      while (pos < end) {
        const n = this.prefix(input, pos, end, piece);
        if (!(piece.to - piece.from === 1 && piece.src[piece.from] === SPACE)) break;
        pos += n;
      }
    }
    if (pos >= end) return this.out.subarray(0, 0);
    if (this.addDummyPrefix) this.pushSpace();
    let prevSpace = this.removeExtraWhitespaces;
    while (pos < end) {
      const n = this.prefix(input, pos, end, piece);
      let from = piece.from;
      const { src, to } = piece;
      if (prevSpace) while (from < to && src[from] === SPACE) from++;
      if (from < to) {
        for (let k = from; k < to; k++) {
          if (src[k] === SPACE && this.escapeWhitespaces) for (const b of WS_BYTES) this.push(b);
          else this.push(src[k]);
        }
        prevSpace = src[to - 1] === SPACE;
      }
      pos += n;
      if (!this.removeExtraWhitespaces) prevSpace = false;
    }
    if (this.removeExtraWhitespaces) {
      const ws = this.escapeWhitespaces ? WS_BYTES : [SPACE];
      while (this.len >= ws.length && ws.every((b, k) => this.out[this.len - ws.length + k] === b)) this.len -= ws.length;
    }
    return this.out.subarray(0, this.len);
  }

  normalize(text: string): string {
    return Buffer.from(this.normalizeBytes(Buffer.from(text, 'utf8'))).toString('utf8');
  }
}

const REPLACEMENT_BYTES = new Uint8Array(REPLACEMENT);
