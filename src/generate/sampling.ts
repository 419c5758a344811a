/**
 * Choosing the next token from one position's logits. Pure functions over
 * Float32Array: nothing here knows about tensors, models or tokenizers, so
 * every rule is tested on fixed logits. Each filter returns a new array and
 * marks removed tokens with -Infinity.
 *
 * Order of application (as in Hugging Face's generate): repetition penalty,
 * no-repeat n-gram ban, banned ids, then either argmax (temperature 0) or
 * temperature, top-k, top-p and a draw from the renormalised distribution.
 */

export interface SamplingOptions {
  /** Divides the logits; 0 means greedy (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens; 0 turns it off. */
  topK: number;
  /** Keep the smallest set of tokens whose probability mass reaches p; 1 turns it off. */
  topP: number;
  /** CTRL-style penalty (> 1 discourages) on tokens already in the history; 1 turns it off. */
  repetitionPenalty: number;
  /** Never complete an n-gram of this size that the history already holds; 0 turns it off. */
  noRepeatNgram: number;
}

/** A source of uniform numbers in [0, 1), e.g. a seedrandom generator. */
export type Rng = () => number;

/** Mass that floating-point rounding may lose when summing probabilities to reach top-p. */
const MASS_TOLERANCE = 1e-6;

/** Index of the largest logit; ties go to the smallest index. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * The ids of the tokens still possible (logit above -Infinity), ordered by logit, largest first; ties
 * by smaller id, so the order is deterministic. Excluded tokens are left out: they come last in that
 * order and change nothing where it is used, and after top-k they are nearly the whole vocabulary.
 */
function possibleIdsByLogit(logits: Float32Array): Uint32Array {
  let count = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) count++;
  const ids = new Uint32Array(count);
  for (let i = 0, n = 0; i < logits.length; i++) if (logits[i] !== -Infinity) ids[n++] = i;
  return ids.sort((a, b) => logits[b] - logits[a] || a - b);
}

/** Whether token a comes before token b in the order of possibleIdsByLogit (larger logit, then smaller id). */
function ranksBefore(logits: Float32Array, a: number, b: number): boolean {
  return logits[a] > logits[b] || (logits[a] === logits[b] && a < b);
}

/**
 * The ids of the k tokens first in that order (k < vocabulary), in no particular order: one pass with a
 * heap of the k best so far, whose root is the last of them, instead of sorting the whole vocabulary.
 */
function firstKIds(logits: Float32Array, k: number): Uint32Array {
  const heap = new Uint32Array(k);
  for (let i = 0; i < k; i++) heap[i] = i;
  // Heapify: every parent ranks after its children, so the root is the last of the k.
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(logits, heap, i);
  for (let id = k; id < logits.length; id++) {
    if (!ranksBefore(logits, id, heap[0])) continue;
    heap[0] = id;
    siftDown(logits, heap, 0);
  }
  return heap;
}

function siftDown(logits: Float32Array, heap: Uint32Array, at: number): void {
  for (;;) {
    const left = 2 * at + 1;
    if (left >= heap.length) return;
    const right = left + 1;
    const later = right < heap.length && ranksBefore(logits, heap[left], heap[right]) ? right : left;
    if (!ranksBefore(logits, heap[at], heap[later])) return;
    [heap[at], heap[later]] = [heap[later], heap[at]];
    at = later;
  }
}

/** Probabilities of the logits (numerically stable softmax; -Infinity becomes 0). */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const p = new Float64Array(logits.length);
  if (max === -Infinity) throw new Error('softmax: every token is excluded');
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    // exp(-Infinity) is 0, which p already holds: excluded tokens (most of them after top-k) cost nothing.
    if (logits[i] === -Infinity) continue;
    p[i] = Math.exp(logits[i] - max);
    sum += p[i];
  }
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

export function applyTemperature(logits: Float32Array, temperature: number): Float32Array {
  if (!(temperature > 0)) throw new Error(`applyTemperature: temperature must be > 0, got ${temperature}`);
  // A loop, not Float32Array.map: the same values, without a call per token of the vocabulary.
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] / temperature;
  return out;
}

/** Keep exactly the k largest logits (ties broken by smaller id); k <= 0 or k >= vocabulary keeps all. */
export function topKFilter(logits: Float32Array, k: number): Float32Array {
  if (k <= 0 || k >= logits.length) return logits.slice();
  const out = new Float32Array(logits.length).fill(-Infinity);
  for (const id of firstKIds(logits, k)) out[id] = logits[id];
  return out;
}

/** Keep the smallest set of most likely tokens whose probability mass reaches p (always at least one). */
export function topPFilter(logits: Float32Array, p: number): Float32Array {
  if (p >= 1) return logits.slice();
  const probs = softmax(logits);
  const ids = possibleIdsByLogit(logits);
  const out = new Float32Array(logits.length).fill(-Infinity);
  let mass = 0;
  for (const id of ids) {
    out[id] = logits[id];
    mass += probs[id];
    if (mass >= p - MASS_TOLERANCE) break;
  }
  return out;
}

/**
 * Penalise every token that occurs in `history` (CTRL, Keskar et al. 2019):
 * a positive logit is divided by the penalty, a negative one multiplied, so
 * the token always becomes less likely. Other tokens are untouched.
 */
export function applyRepetitionPenalty(logits: Float32Array, history: readonly number[], penalty: number): Float32Array {
  const out = logits.slice();
  if (penalty === 1) return out;
  for (const id of new Set(history)) {
    if (id < 0 || id >= out.length) continue;
    out[id] = out[id] > 0 ? out[id] / penalty : out[id] * penalty;
  }
  return out;
}

/** Tokens that would complete an n-gram already present in `history`. */
export function repeatedNgramTokens(history: readonly number[], n: number): Set<number> {
  const banned = new Set<number>();
  if (n <= 0 || history.length < n) return banned;
  if (n === 1) return new Set(history);
  const prefix = history.slice(history.length - (n - 1));
  for (let start = 0; start + n <= history.length; start++) {
    let same = true;
    for (let j = 0; j < n - 1 && same; j++) same = history[start + j] === prefix[j];
    if (same) banned.add(history[start + n - 1]);
  }
  return banned;
}

/** The logits with the given ids set to -Infinity. */
export function banTokens(logits: Float32Array, ids: Iterable<number>): Float32Array {
  const out = logits.slice();
  for (const id of ids) if (id >= 0 && id < out.length) out[id] = -Infinity;
  return out;
}

/** Draw an index from a probability vector with one uniform number. */
export function drawFrom(probs: Float64Array, rng: Rng): number {
  const u = rng();
  let acc = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    acc += probs[i];
    last = i;
    if (u < acc) return i;
  }
  // u landed in the rounding gap at the very top: the last possible token.
  return last;
}

/**
 * The next token. `history` is what the penalties look at (the answer
 * generated so far); `banned` ids are never chosen (special tokens that must
 * not appear inside an answer). If the bans would exclude every token, the
 * n-gram ban is dropped rather than failing.
 */
export function nextToken(
  logits: Float32Array,
  history: readonly number[],
  opts: SamplingOptions,
  rng: Rng,
  banned: readonly number[] = [],
): number {
  // Filters that are off are skipped rather than run as copies: a step's cost is a few vocabulary-sized passes.
  const penalised = banTokens(opts.repetitionPenalty === 1 ? logits : applyRepetitionPenalty(logits, history, opts.repetitionPenalty), banned);
  const repeated = repeatedNgramTokens(history, opts.noRepeatNgram);
  let filtered = repeated.size > 0 ? banTokens(penalised, repeated) : penalised;
  if (filtered.every((x) => x === -Infinity)) filtered = penalised;
  if (opts.temperature === 0) return argmax(filtered);
  const candidates = topPFilter(topKFilter(applyTemperature(filtered, opts.temperature), opts.topK), opts.topP);
  return drawFrom(softmax(candidates), rng);
}
