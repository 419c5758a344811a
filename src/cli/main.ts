/**
 * The table of commands: each binary and the umbrella `gptmed` run from here.
 * Command modules load on demand, so a binary pays only for its own stage
 * (tfjs alone costs a second and tens of MB at start).
 */
import { runBinary, runUmbrella, type GptmedCommand } from './command.js';

const commandLoaders: Record<string, () => Promise<GptmedCommand>> = {
  convert: async () => (await import('./convert.js')).convertCommand,
  'train-tokenizer': async () => (await import('./train-tokenizer.js')).trainTokenizerCommand,
  tokenize: async () => (await import('./tokenize.js')).tokenizeCommand,
  train: async () => (await import('./train.js')).trainCommand,
  generate: async () => (await import('./generate.js')).generateCommand,
  evaluate: async () => (await import('./evaluate.js')).evaluateCommand,
  export: async () => (await import('./export.js')).exportCommand,
  import: async () => (await import('./import.js')).importCommand,
  serve: async () => (await import('./serve.js')).serveCommand,
};

/** Entry for bin/gptmed-<name>.js, or the umbrella when no name is given. */
export async function start(name?: string): Promise<void> {
  if (name === undefined) {
    return runUmbrella(await Promise.all(Object.values(commandLoaders).map((load) => load())));
  }
  const load = commandLoaders[name];
  if (!load) throw new Error(`unknown command ${name}`);
  return runBinary(await load());
}
