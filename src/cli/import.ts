/** gptmed-import: flags in, importHf() out (a Hugging Face GPT-2 directory in as a gptmed run). */
import { defineCommand } from './command.js';

export const importCommand = defineCommand({
  builder: (y) =>
    y
      .option('from', { type: 'string', demandOption: true, describe: 'the Hugging Face directory, e.g. from gptmed-export --format hf' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the run directory to write (tokenizer.model, step-NNNNNN/, latest, best)' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'replace an existing output' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress lines (the summary is still printed)' }),
  handler: async (args) => {
    const { importHf } = await import('../export/import.js');
    const started = Date.now();
    const r = await importHf({ from: args.from, output: args.output, force: args.force, log: args.quiet ? () => {} : (line) => process.stderr.write(`${line}\n`) });
    const c = r.modelConfig;
    process.stdout.write(
      `wrote ${r.runDir}: ${r.stepDir.slice(r.runDir.length).replace(/^[\\/]+/, '')} (${c.nLayers} layers, d ${c.dModel}, ${(r.parameterCount / 1e6).toFixed(2)} M parameters, ` +
        `from ${r.dtypes.join('/')} weights) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  },
  examples: [
    ['gptmed-import --from my-model -o checkpoints/imported', 'a run directory: gptmed-generate --checkpoint checkpoints/imported'],
    ['gptmed-import --from torch-out -o checkpoints/imported --force', 'replace an earlier import'],
    ['gptmed-train --resume-from checkpoints/imported --train-data data/tokenized/train.npy --val-data data/tokenized/val.npy', 'then train it further on gptmed shards'],
  ],
});
