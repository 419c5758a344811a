/**
 * GET /v1/options: what a client needs to offer a job's settings and a generation's, with the same
 * defaults and help lines as the commands' --help: every job config key (job-config.ts), the model size
 * presets with their parameter counts, and the generation defaults and presets (configs/generate.json).
 */
import { generateConfig } from '../generate/index.js';
import { countParameters, loadPreset, modelSizes } from '../model/index.js';
import type { JobKey } from './job-config.js';

export function optionsView(keys: Map<string, JobKey>): object {
  const vocabSize = Number(keys.get('vocabSize')?.default);
  const sizes = modelSizes.map((name) => {
    const shape = loadPreset(name);
    return { name, ...shape, parameters: countParameters({ ...shape, vocabSize }) };
  });
  const { defaults, presets } = generateConfig();
  return {
    object: 'options',
    training: {
      settings: [...keys.values()].map((k) => ({ key: k.key, flag: `--${k.flag}`, type: k.type, default: k.default, description: k.description, ...(k.choices ? { choices: k.choices } : {}), stages: k.stages })),
      // Counted at the default vocabulary size; the count grows by dModel per extra piece.
      modelSizes: sizes,
      defaultModelSize: keys.get('modelSize')?.default ?? null,
    },
    generation: { defaults, presets },
  };
}
