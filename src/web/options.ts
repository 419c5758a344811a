/**
 * GET /v1/options, asked once: the training settings with their defaults and one-line descriptions, the
 * model size presets, and the generation defaults and presets. Forms are built from it, so the page
 * follows the commands' own flags instead of keeping a copy.
 */
import { getJson } from './api.js';
import type { ModelShape, ModelSize, Options } from './types.js';

let loading: Promise<Options> | null = null;

export function loadOptions(): Promise<Options> {
  // A failure is not cached: the next caller asks again.
  loading ??= getJson<Options>('/v1/options').catch((err: unknown) => {
    loading = null;
    throw err;
  });
  return loading;
}

/** The preset a model's shape is (its name), or "custom". Vocabulary and context length may differ. */
export function sizeName(shape: ModelShape, sizes: readonly ModelSize[]): string {
  const same = sizes.find((s) => s.dModel === shape.dModel && s.nLayers === shape.nLayers && s.nHeads === shape.nHeads && s.dFf === shape.dFf);
  return same?.name ?? 'custom';
}
