/**
 * The table of commands: each binary and the umbrella `gptmed` run from here.
 * A command's module loads only when it runs, so a binary pays only for its own
 * stage (tfjs alone costs a second and tens of MB at start); `gptmed --help`
 * lists them all from this table without loading any.
 */
import { runBinary, runUmbrella, type CommandEntry } from './command.js';

const commands: readonly CommandEntry[] = [
  {
    name: 'convert',
    positionals: '<input>',
    describe: 'Convert CSV, TSV, JSON, JSONL or SQLite into Q&A text',
    load: async () => (await import('./convert.js')).convertCommand,
  },
  {
    name: 'train-tokenizer',
    describe: 'Train a SentencePiece-compatible BPE tokenizer on Q&A text (or plain text, one sentence per line)',
    load: async () => (await import('./train-tokenizer.js')).trainTokenizerCommand,
  },
  {
    name: 'tokenize',
    describe: 'Tokenize Q&A text into packed .npy train/val shards',
    load: async () => (await import('./tokenize.js')).tokenizeCommand,
  },
  {
    name: 'train',
    describe: 'Train a GPT on tokenized shards (gptmed-tokenize output); checkpoints, TensorBoard logs and metrics.jsonl go to --checkpoint-dir',
    load: async () => (await import('./train.js')).trainCommand,
  },
  {
    name: 'generate',
    describe: 'Answer questions with a trained model; answers stop by themselves at the end-of-answer token',
    load: async () => (await import('./generate.js')).generateCommand,
  },
  {
    name: 'evaluate',
    describe: 'Measure a trained model on held-out Q&A pairs: answer perplexity, exact match and token F1 of its greedy answers',
    load: async () => (await import('./evaluate.js')).evaluateCommand,
  },
  {
    name: 'export',
    describe: 'Export a trained model: GGUF for llama.cpp (and Ollama, LM Studio, node-llama-cpp), or a Hugging Face GPT-2 directory',
    load: async () => (await import('./export.js')).exportCommand,
  },
  {
    name: 'import',
    describe: 'Import a Hugging Face GPT-2 directory (config.json, model.safetensors, tokenizer.model) as a gptmed run directory',
    load: async () => (await import('./import.js')).importCommand,
  },
  {
    name: 'serve',
    describe: 'Serve trained models over an OpenAI-compatible HTTP API, and run training jobs sent over HTTP',
    load: async () => (await import('./serve.js')).serveCommand,
  },
];

/** Entry for bin/gptmed-<name>.js, or the umbrella when no name is given. */
export async function start(name?: string): Promise<void> {
  if (name === undefined) return runUmbrella(commands);
  const entry = commands.find((c) => c.name === name);
  if (!entry) throw new Error(`unknown command ${name}`);
  return runBinary(entry);
}
