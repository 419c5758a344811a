/** gptmed-export: flags in, exportModel() out. */
import { exportDtypes, exportFormats, exportModel, type ExportDtype, type ExportFormat } from '../export/index.js';
import { defineCommand } from './command.js';

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

export const exportCommand = defineCommand({
  builder: (y) =>
    y
      .option('checkpoint', { type: 'string', demandOption: true, describe: 'run directory (its best checkpoint, else latest), step directory, or best/latest file' })
      .option('format', { choices: exportFormats, demandOption: true, describe: 'gguf: one .gguf file (llama.cpp gpt2); hf: a directory transformers loads as GPT2LMHeadModel' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the .gguf file, or the hf directory' })
      .option('dtype', { choices: exportDtypes, default: 'f32' as ExportDtype, describe: 'weights as float32 (as trained) or float16 (half the size)' })
      .option('merge', { type: 'boolean', default: false, describe: "a LoRA run: write its base's weights with the adapters merged (what exporting a LoRA run always does)" })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'replace an existing output' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no notes on stderr (the summary is still printed)' }),
  handler: (args) => {
    const started = Date.now();
    const r = exportModel({ checkpoint: args.checkpoint, format: args.format as ExportFormat, output: args.output, dtype: args.dtype, force: args.force, merge: args.merge });
    if (!args.quiet) for (const note of r.notes) process.stderr.write(`note: ${note}\n`);
    process.stdout.write(`wrote ${r.output}: ${r.format} ${r.dtype}, ${mb(r.bytes)}, from ${r.stepDir} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  },
  examples: [
    ['gptmed-export --checkpoint checkpoints/default --format gguf -o model.gguf', 'one file for llama.cpp: llama-cli -m model.gguf, or node-llama-cpp'],
    ['gptmed-export --checkpoint checkpoints/default --format gguf --dtype f16 -o model-f16.gguf', 'half the size'],
    ['gptmed-export --checkpoint checkpoints/lora --merge --format hf -o merged', 'a LoRA run: its base with the adapters merged, one model'],
    ['gptmed-export --checkpoint checkpoints/default/step-001000 --format hf -o my-model', 'a directory for transformers: GPT2LMHeadModel.from_pretrained("my-model")'],
  ],
});
