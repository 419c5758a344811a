/**
 * The one seeded shuffle: convert --shuffle, tokenize's split and the
 * trainer's epoch order all draw their orders here, so the same seed gives
 * the same order everywhere and in every release (a product promise).
 */
import seedrandom from 'seedrandom';

/** The indexes 0..count-1 in a Fisher-Yates order drawn from seedrandom(seed). */
export function shuffledOrder(count: number, seed: string): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const rng = seedrandom(seed);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
