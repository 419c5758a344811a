/**
 * Answer quality against a reference, as in SQuAD's official evaluation:
 * both texts are normalised (lower case, punctuation and the articles a/an/the
 * removed, whitespace collapsed) before comparing. Exact match is 1 or 0;
 * token F1 is the harmonic mean of precision and recall over the bag of
 * normalised words.
 */

const ARTICLES = /\b(a|an|the)\b/gu;
const PUNCTUATION = /[\p{P}\p{S}]/gu;

export function normalizeAnswer(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(PUNCTUATION, ' ')
    .replace(ARTICLES, ' ')
    .split(/\s+/u)
    .filter((w) => w !== '')
    .join(' ');
}

function words(text: string): string[] {
  const n = normalizeAnswer(text);
  return n === '' ? [] : n.split(' ');
}

export function exactMatch(answer: string, reference: string): number {
  return normalizeAnswer(answer) === normalizeAnswer(reference) ? 1 : 0;
}

export function tokenF1(answer: string, reference: string): number {
  const a = words(answer);
  const r = words(reference);
  // Both empty after normalisation (e.g. only punctuation): they agree.
  if (a.length === 0 || r.length === 0) return a.length === r.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of r) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of a) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / a.length;
  const recall = common / r.length;
  return (2 * precision * recall) / (precision + recall);
}

/**
 * Perplexity over many answers: exp of the mean negative log-likelihood per
 * answer token, every token of every answer weighted equally.
 */
export class PerplexityMeter {
  private nll = 0;
  private tokens = 0;

  add(sumNll: number, tokens: number): void {
    this.nll += sumNll;
    this.tokens += tokens;
  }

  get tokenCount(): number {
    return this.tokens;
  }

  get meanNll(): number {
    return this.tokens === 0 ? NaN : this.nll / this.tokens;
  }

  get perplexity(): number {
    return Math.exp(this.meanNll);
  }
}
