/** Learning rate: linear warmup from 0, then cosine decay to minLr at the last step. */
export interface Schedule {
  learningRate: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** The rate for optimizer step `step` (1-based: the first update is step 1). */
export function learningRateAt(step: number, s: Schedule): number {
  if (step <= s.warmupSteps) return (s.learningRate * step) / s.warmupSteps;
  const decaySteps = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / decaySteps);
  return s.minLr + 0.5 * (s.learningRate - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
