/**
 * How a Q&A pair becomes text and tokens, defined once: the tokenizer trains
 * on pairText, tokenize writes encodePair, generate prompts with encodePrompt.
 *
 *   <bos> Q: question\nA: answer <eos>
 *
 * The prompt ends at "A:" with no trailing space; the answer's first piece
 * starts with "▁" (the space), and no piece spans a "▁" boundary, so the
 * prompt's ids are an exact prefix of the pair's ids (test/dataset/framing.test.ts
 * checks this, and the two-part encoding below, on every pair of real data).
 */
import type { QaPair } from '../convert/qa-format.js';
import { UserError } from '../common/errors.js';
import { ModelType, nmtNfkcCharsmap, PieceType, type ModelProto } from '../tokenizer/model-proto.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** The text a model sees before the answer. */
export function promptText(question: string): string {
  return `Q: ${question}\nA:`;
}

/** A whole pair as text: the prompt, a space, the answer. */
export function pairText(pair: QaPair): string {
  return `${promptText(pair.question)} ${pair.answer}`;
}

export interface EncodedPair {
  /** [bos, ...encode(pairText), eos] */
  ids: number[];
  /** Index of the first answer token; ids from here on (eos included) are the answer. */
  answerStart: number;
}

function requireFramingIds(tok: Tokenizer): void {
  if (tok.specialIds.bos < 0 || tok.specialIds.eos < 0) {
    throw new UserError(`${tok.modelPath}: the tokenizer has no <s>/</s> pieces to frame pairs; train it with gptmed-train-tokenizer on Q&A text`);
  }
}

export function encodePrompt(tok: Tokenizer, question: string): number[] {
  requireFramingIds(tok);
  return [tok.specialIds.bos, ...tok.encode(promptText(question))];
}

/**
 * Whether a pair can be encoded in two calls (prompt, then " " + answer) with
 * the same result as its whole text: true for SentencePiece models, where no
 * piece spans the "▁" that starts the answer, unless a custom normalizer
 * treats a leading space differently. Checked once per tokenizer on a probe.
 */
const twoPartSafe = new WeakMap<Tokenizer, boolean>();
function canEncodeInTwoParts(tok: Tokenizer): boolean {
  let safe = twoPartSafe.get(tok);
  if (safe === undefined) {
    const probe: QaPair = { question: 'Why so?', answer: 'Line one,\n  two.' };
    const parts = [...tok.encode(promptText(probe.question)), ...tok.encode(` ${probe.answer}`)];
    safe = tok.encode(pairText(probe)).join() === parts.join();
    twoPartSafe.set(tok, safe);
  }
  return safe;
}

export function encodePair(tok: Tokenizer, pair: QaPair): EncodedPair {
  requireFramingIds(tok);
  const prompt = tok.encode(promptText(pair.question));
  const rest = canEncodeInTwoParts(tok) ? [...prompt, ...tok.encode(` ${pair.answer}`)] : tok.encode(pairText(pair));
  return { ids: [tok.specialIds.bos, ...rest, tok.specialIds.eos], answerStart: 1 + prompt.length };
}

/**
 * The id of the "\n" piece when SentencePiece provably segments a text as
 * the concatenation of its words (the text cut before each space and around
 * each newline), else null. Its normalizer keeps a user-defined piece as it
 * is and otherwise rewrites by rules on the raw bytes; its BPE merges only
 * neighbours whose concatenation is a piece, and never a user-defined one. So
 * the words segment independently when
 * - "\n" is a user-defined piece and no other piece holds "\n";
 * - no piece holds "▁" (an escaped space) or a space past its first character,
 *   and "▁" itself is a piece (so an unknown character before a word is never
 *   merged with one at its start into one <unk>);
 * - no dummy prefix, no whitespace trimming, "▁" at the start of pieces (these
 *   act on the whole text);
 * - no normalization rule reads across a space or "\n": no rules at all
 *   (identity), or SentencePiece's own nmt_nfkc table, whose rules never do
 *   (test/dataset/framing.test.ts walks all of them).
 * gptmed-train-tokenizer's Q&A models meet all of these.
 */
export function wordSplitNewlineId(model: ModelProto): number | null {
  if ((model.trainerSpec?.modelType ?? ModelType.UNIGRAM) !== ModelType.BPE || model.trainerSpec?.treatWhitespaceAsSuffix === true) return null;
  const spec = model.normalizerSpec ?? {};
  if (spec.addDummyPrefix !== false || spec.removeExtraWhitespaces !== false || spec.escapeWhitespaces === false) return null;
  const charsmap = spec.precompiledCharsmap ?? new Uint8Array(0);
  if (charsmap.length > 0 && !Buffer.from(charsmap).equals(nmtNfkcCharsmap())) return null;
  let newlineId: number | null = null;
  let spacePiece = false;
  for (const [id, { piece, type }] of model.pieces.entries()) {
    if (piece === '\n' && type === PieceType.USER_DEFINED) newlineId = id;
    else if (piece.includes('\n')) return null;
    if (piece === WS && (type ?? PieceType.NORMAL) === PieceType.NORMAL) spacePiece = true;
    const spaceFrom = type === PieceType.USER_DEFINED ? 0 : 1;
    if (piece.indexOf(WS, spaceFrom) >= 0 || piece.indexOf(' ', spaceFrom) >= 0) return null;
  }
  return spacePiece ? newlineId : null;
}

const WS = '\u2581';

/** Pairs encoded as encodePair encodes each, laid out one after another. */
export interface EncodedPairs {
  /** Every pair's [bos, ...prompt, ...answer, eos], back to back. */
  ids: Int32Array<ArrayBuffer>;
  lengths: Int32Array<ArrayBuffer>;
  answerStarts: Int32Array<ArrayBuffer>;
}

/** A growing Int32Array (ids, and per-pair counts in tokenize). */
export class IdList {
  ids = new Int32Array(4096);
  length = 0;

  push(src: ArrayLike<number>): void {
    this.ids = grown(this.ids, this.length + src.length);
    this.ids.set(src, this.length);
    this.length += src.length;
  }

  pushOne(id: number): void {
    this.ids = grown(this.ids, this.length + 1);
    this.ids[this.length++] = id;
  }

  view(): Int32Array<ArrayBuffer> {
    return this.ids.subarray(0, this.length);
  }
}

/**
 * Word -> ids, looked up by the word's characters where they stand in the
 * text: a word seen before costs one hash and one comparison, and no string
 * is made for it (a Map<string, ...> would make one per word, and most of the
 * encoding time went there). Open addressing over FNV-1a hashes of UTF-16
 * code units; the characters and ids live in growing typed arrays.
 */
class WordMemo {
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

/** `array`, or a copy at least twice as long when it holds fewer than `needed` items. */
function grown<T extends Int32Array | Uint16Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const copy = new (array.constructor as new (n: number) => T)(Math.max(needed, array.length * 2));
  copy.set(array);
  return copy;
}

const NEWLINE = 0x0a;
const SPACE = 0x20;

/** Entries remembered per worker; past this the memo starts afresh between batches, so memory stays bounded. */
const MEMO_WORDS = 1 << 18;
/** Characters of new words per SentencePiece call: enough to spread the wrapper's cost per call. */
const CALL_CHARS = 4096;

/**
 * encodePair over many pairs. When wordSplitNewlineId allows, each distinct
 * word (the text cut before each space and around each newline) is encoded
 * by SentencePiece once and remembered: new words go to it joined with "\n",
 * ~4 KB per call, and its ids are cut at those "\n"s. Otherwise each pair is
 * encoded on its own (encodePair).
 */
export class PairEncoder {
  private readonly memo = new WordMemo();

  constructor(
    private readonly tok: Tokenizer,
    private readonly newlineId: number | null,
    /** Entries after which the memo starts afresh (a parameter so tests can reach it). */
    private readonly memoWords = MEMO_WORDS,
  ) {
    requireFramingIds(tok);
  }

  encode(pairs: readonly QaPair[]): EncodedPairs {
    const lengths = new Int32Array(pairs.length);
    const answerStarts = new Int32Array(pairs.length);
    const newlineId = this.newlineId;
    if (newlineId === null) {
      const out = new IdList();
      pairs.forEach((pair, i) => {
        const e = encodePair(this.tok, pair);
        out.push(e.ids);
        lengths[i] = e.ids.length;
        answerStarts[i] = e.answerStart;
      });
      return { ids: out.view(), lengths, answerStarts };
    }
    if (this.memo.size > this.memoWords) this.memo.clear();
    // Each pair's words as memo entries (-1: the newline piece); promptEnds[i]: where its answer starts.
    const words = new IdList();
    const promptEnds = new Int32Array(pairs.length);
    const pairEnds = new Int32Array(pairs.length);
    // Entries from firstNew on are new in this batch; freshWords are their words (the only strings made here).
    const firstNew = this.memo.size;
    const freshWords: string[] = [];
    const scan = (text: string): void => {
      let start = 0;
      let hash = 0x811c9dc5;
      for (let i = 0; i <= text.length; i++) {
        const c = i < text.length ? text.charCodeAt(i) : -1;
        if (i > start && (c === -1 || c === SPACE || c === NEWLINE || text.charCodeAt(i - 1) === NEWLINE)) {
          if (i - start === 1 && text.charCodeAt(start) === NEWLINE) {
            words.pushOne(-1);
          } else {
            const e = this.memo.entry(text, start, i, hash);
            if (e === firstNew + freshWords.length) freshWords.push(text.slice(start, i));
            words.pushOne(e);
          }
          start = i;
          hash = 0x811c9dc5;
        }
        hash = Math.imul(hash ^ c, 0x01000193);
      }
    };
    pairs.forEach((pair, i) => {
      scan(promptText(pair.question));
      promptEnds[i] = words.length;
      scan(` ${pair.answer}`);
      pairEnds[i] = words.length;
    });
    this.learn(firstNew, freshWords);
    const entries = words.view();
    let total = 2 * pairs.length;
    for (const e of entries) total += e < 0 ? 1 : this.memo.idCount(e);
    const out = new Int32Array(total);
    const { bos, eos } = this.tok.specialIds;
    let at = 0;
    let w = 0;
    const put = (end: number): void => {
      for (; w < end; w++) {
        const e = entries[w];
        if (e < 0) out[at++] = newlineId;
        else at = this.memo.copyIds(e, out, at);
      }
    };
    for (let i = 0; i < pairs.length; i++) {
      const start = at;
      out[at++] = bos;
      put(promptEnds[i]);
      answerStarts[i] = at - start;
      put(pairEnds[i]);
      out[at++] = eos;
      lengths[i] = at - start;
    }
    return { ids: out, lengths, answerStarts };
  }

  /** Encode the memo entries firstEntry, firstEntry + 1, ..., whose words are `words` (none a newline). */
  private learn(firstEntry: number, words: readonly string[]): void {
    for (let first = 0; first < words.length; ) {
      let end = first;
      for (let chars = 0; end < words.length && (end === first || chars < CALL_CHARS); end++) chars += words[end].length + 1;
      const ids = this.tok.encode(words.slice(first, end).join('\n'));
      let from = 0;
      for (let k = first; k < end; k++) {
        let to = from;
        while (to < ids.length && ids[to] !== this.newlineId) to++;
        if ((to === ids.length) !== (k === end - 1)) {
          throw new Error(`PairEncoder: ${this.tok.modelPath} did not keep "\n" as one piece; wordSplitNewlineId must not have allowed word splitting`);
        }
        this.memo.setIds(firstEntry + k, ids, from, to);
        from = to + 1;
      }
      first = end;
    }
  }
}
