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
    if (this.length + src.length > this.ids.length) {
      const grown = new Int32Array(Math.max(this.ids.length * 2, this.length + src.length));
      grown.set(this.ids.subarray(0, this.length));
      this.ids = grown;
    }
    this.ids.set(src, this.length);
    this.length += src.length;
  }

  view(): Int32Array<ArrayBuffer> {
    return this.ids.subarray(0, this.length);
  }
}

/** The words of `text` (see wordSplitNewlineId): cut before each space and around each newline. */
function wordsOf(text: string, out: string[]): void {
  let start = 0;
  for (let i = 1; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : -1;
    if (c === -1 || c === 0x20 || c === 0x0a || text.charCodeAt(i - 1) === 0x0a) {
      out.push(text.slice(start, i));
      start = i;
    }
  }
}

/** Words remembered per worker; past this the memo starts afresh, so memory stays bounded. */
const MEMO_WORDS = 1 << 18;
/** Characters of new words per SentencePiece call: enough to spread the wrapper's cost per call. */
const CALL_CHARS = 4096;

/**
 * encodePair over many pairs. When wordSplitNewlineId allows, each distinct
 * word is encoded by SentencePiece once and remembered: new words go to it
 * joined with "\n", ~4 KB per call, and its ids are cut at those "\n"s.
 * Otherwise each pair is encoded on its own (encodePair).
 */
export class PairEncoder {
  private readonly memo = new Map<string, Int32Array>();

  constructor(
    private readonly tok: Tokenizer,
    private readonly newlineId: number | null,
  ) {
    requireFramingIds(tok);
    if (newlineId !== null) this.memo.set('\n', Int32Array.of(newlineId));
  }

  encode(pairs: readonly QaPair[]): EncodedPairs {
    const lengths = new Int32Array(pairs.length);
    const answerStarts = new Int32Array(pairs.length);
    if (this.newlineId === null) {
      const out = new IdList();
      pairs.forEach((pair, i) => {
        const e = encodePair(this.tok, pair);
        out.push(e.ids);
        lengths[i] = e.ids.length;
        answerStarts[i] = e.answerStart;
      });
      return { ids: out.view(), lengths, answerStarts };
    }
    // Words of each pair's prompt, then of " " + answer (promptEnds[i]: where the answer starts).
    const words: string[] = [];
    const promptEnds = new Int32Array(pairs.length);
    const pairEnds = new Int32Array(pairs.length);
    pairs.forEach((pair, i) => {
      wordsOf(promptText(pair.question), words);
      promptEnds[i] = words.length;
      wordsOf(` ${pair.answer}`, words);
      pairEnds[i] = words.length;
    });
    // One memo look-up a word; the words not remembered are encoded together, then looked up once more.
    const wordIds: Int32Array[] = new Array<Int32Array>(words.length);
    const unknown: number[] = [];
    for (let w = 0; w < words.length; w++) {
      const ids = this.memo.get(words[w]);
      if (ids === undefined) unknown.push(w);
      else wordIds[w] = ids;
    }
    if (unknown.length > 0) {
      this.learn([...new Set(unknown.map((w) => words[w]))]);
      for (const w of unknown) wordIds[w] = this.memo.get(words[w])!;
    }
    let total = 2 * pairs.length;
    for (const ids of wordIds) total += ids.length;
    const out = new Int32Array(total);
    const { bos, eos } = this.tok.specialIds;
    let at = 0;
    let w = 0;
    // Words are a few ids long: a plain loop beats TypedArray.set's call per word.
    const put = (end: number): void => {
      for (; w < end; w++) {
        const ids = wordIds[w];
        for (let k = 0; k < ids.length; k++) out[at++] = ids[k];
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

  /** Encode and remember `fresh`: distinct words the memo does not hold. */
  private learn(fresh: readonly string[]): void {
    if (this.memo.size + fresh.length > MEMO_WORDS) {
      this.memo.clear();
      this.memo.set('\n', Int32Array.of(this.newlineId!));
    }
    for (let first = 0; first < fresh.length; ) {
      let end = first;
      for (let chars = 0; end < fresh.length && (end === first || chars < CALL_CHARS); end++) chars += fresh[end].length + 1;
      const ids = this.tok.encode(fresh.slice(first, end).join('\n'));
      let from = 0;
      for (let k = first; k < end; k++) {
        let to = from;
        while (to < ids.length && ids[to] !== this.newlineId) to++;
        if ((to === ids.length) !== (k === end - 1)) {
          throw new Error(`PairEncoder: ${this.tok.modelPath} did not keep "\n" as one piece; wordSplitNewlineId must not have allowed word splitting`);
        }
        this.memo.set(fresh[k], Int32Array.from(ids.slice(from, to)));
        from = to + 1;
      }
      first = end;
    }
  }
}
