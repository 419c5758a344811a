/**
 * encodePair over many pairs (and a plain-text document's [bos, ...encode(text), eos]), fast: tokenize's workers encode each distinct
 * word once (WordMemo) when the model provably segments words apart
 * (wordSplitNewlineId), and give exactly encodePair's ids
 * (test/dataset/pair-encoder.test.ts checks this on real data).
 */
import { promptText } from '../convert/pair-text.js';
import type { QaPair } from '../convert/qa-format.js';
import { Int32List } from '../common/typed-arrays.js';
import { ModelType, nmtNfkcCharsmap, PieceType, type ModelProto } from '../tokenizer/model-proto.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { encodePair, requireFramingIds } from './framing.js';
import { WordMemo } from './word-memo.js';

const WS = '\u2581';
const NEWLINE = 0x0a;
const SPACE = 0x20;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Entries remembered per worker; past this the memo starts afresh between batches, so memory stays bounded. */
const MEMO_WORDS = 1 << 18;
/** Characters of new words per SentencePiece call: enough to spread the wrapper's cost per call. */
const CALL_CHARS = 4096;

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
 *   (test/dataset/pair-encoder.test.ts walks all of them).
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

/** Pairs encoded as encodePair encodes each, laid out one after another. */
export interface EncodedPairs {
  /** Every pair's [bos, ...prompt, ...answer, eos], back to back. */
  ids: Int32Array<ArrayBuffer>;
  lengths: Int32Array<ArrayBuffer>;
  answerStarts: Int32Array<ArrayBuffer>;
}

/** A batch's pairs as memo entries (-1: the newline piece), with where each pair's prompt and answer end. */
interface WordBatch {
  entries: Int32Array;
  promptEnds: Int32Array;
  pairEnds: Int32Array;
}

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
    if (this.newlineId === null) return this.encodeEach(pairs);
    if (this.memo.size > this.memoWords) this.memo.clear();
    return this.assemble(this.wordsOf(pairs.map((pair) => [promptText(pair.question), ` ${pair.answer}`])));
  }

  /** Plain-text documents, each as [bos, ...encode(text), eos]; a document has no answer (answerStarts: where its eos is). */
  encodeDocuments(texts: readonly string[]): EncodedPairs {
    if (this.newlineId === null) return this.encodeEachDocument(texts);
    if (this.memo.size > this.memoWords) this.memo.clear();
    return this.assemble(this.wordsOf(texts.map((text) => [text, ''])));
  }

  private encodeEachDocument(texts: readonly string[]): EncodedPairs {
    const out = new Int32List();
    const lengths = new Int32Array(texts.length);
    const answerStarts = new Int32Array(texts.length);
    const { bos, eos } = this.tok.specialIds;
    texts.forEach((text, i) => {
      const ids = [bos, ...this.tok.encode(text), eos];
      out.push(ids);
      lengths[i] = ids.length;
      answerStarts[i] = ids.length - 1;
    });
    return { ids: out.view(), lengths, answerStarts };
  }

  private encodeEach(pairs: readonly QaPair[]): EncodedPairs {
    const out = new Int32List();
    const lengths = new Int32Array(pairs.length);
    const answerStarts = new Int32Array(pairs.length);
    pairs.forEach((pair, i) => {
      const e = encodePair(this.tok, pair);
      out.push(e.ids);
      lengths[i] = e.ids.length;
      answerStarts[i] = e.answerStart;
    });
    return { ids: out.view(), lengths, answerStarts };
  }

  /** The texts' words (each a prompt and an answer) as memo entries; the words new in this batch are encoded (learn) before it returns. */
  private wordsOf(texts: ReadonlyArray<readonly [string, string]>): WordBatch {
    const words = new Int32List();
    const promptEnds = new Int32Array(texts.length);
    const pairEnds = new Int32Array(texts.length);
    // Entries from firstNew on are new in this batch; freshWords are their words (the only strings made here).
    const firstNew = this.memo.size;
    const freshWords: string[] = [];
    texts.forEach(([prompt, answer], i) => {
      this.scan(prompt, words, firstNew, freshWords);
      promptEnds[i] = words.length;
      this.scan(answer, words, firstNew, freshWords);
      pairEnds[i] = words.length;
    });
    this.learn(firstNew, freshWords);
    return { entries: words.view(), promptEnds, pairEnds };
  }

  /** Append text's words to `words` as memo entries, hashing each as it is read; a new word's string goes to freshWords. */
  private scan(text: string, words: Int32List, firstNew: number, freshWords: string[]): void {
    let start = 0;
    let hash = FNV_OFFSET;
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
        hash = FNV_OFFSET;
      }
      hash = Math.imul(hash ^ c, FNV_PRIME);
    }
  }

  /** Each pair's [bos, ...its words' ids, eos], back to back. */
  private assemble({ entries, promptEnds, pairEnds }: WordBatch): EncodedPairs {
    const n = promptEnds.length;
    const lengths = new Int32Array(n);
    const answerStarts = new Int32Array(n);
    let total = 2 * n;
    for (const e of entries) total += e < 0 ? 1 : this.memo.idCount(e);
    const out = new Int32Array(total);
    const { bos, eos } = this.tok.specialIds;
    let at = 0;
    for (let i = 0; i < n; i++) {
      const start = at;
      out[at++] = bos;
      at = this.copyWords(entries, i === 0 ? 0 : pairEnds[i - 1], promptEnds[i], out, at);
      answerStarts[i] = at - start;
      at = this.copyWords(entries, promptEnds[i], pairEnds[i], out, at);
      out[at++] = eos;
      lengths[i] = at - start;
    }
    return { ids: out, lengths, answerStarts };
  }

  /** Copy the ids of entries[from, to) into out at `at`; returns the position after them. */
  private copyWords(entries: Int32Array, from: number, to: number, out: Int32Array, at: number): number {
    for (let w = from; w < to; w++) {
      const e = entries[w];
      if (e < 0) out[at++] = this.newlineId!;
      else at = this.memo.copyIds(e, out, at);
    }
    return at;
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
