/** gptmed-evaluate: answer perplexity, exact match and token F1 on held-out Q&A pairs. */
import { writeFileAtomic } from '../common/atomic.js';
import { Progress } from '../common/progress.js';
import { evaluate, generateConfig, jsonLine, loadModel, type EvaluateReport } from '../generate/index.js';
import { checkOutput } from '../common/output.js';
import { defineCommand } from './command.js';
import { modelAndSamplingFlags, samplingRequest } from './generate.js';

function summary(r: EvaluateReport, output: string): string {
  const s = r.stops;
  return [
    `pairs              ${r.pairs}${r.skippedBlocks ? ` (${r.skippedBlocks} malformed blocks skipped)` : ''}`,
    `answer perplexity  ${r.answerPerplexity.toFixed(3)} over ${r.answerTokens} reference answer tokens${r.truncatedPairs ? ` (${r.truncatedPairs} pairs cut to fit the context)` : ''}`,
    `exact match        ${r.exactMatch.toFixed(3)}`,
    `token F1           ${r.tokenF1.toFixed(3)}`,
    `answers ended by   end token ${s.eos}, new question ${s.question}, --max-new-tokens ${s.length}, full context ${s.context}`,
    `time               ${r.seconds.toFixed(1)} s (${(r.seconds / r.pairs).toFixed(2)} s a pair, generation ${r.tokensPerSecond.toFixed(1)} tokens/s)`,
    `answers            ${output}`,
  ].join('\n');
}

export const evaluateCommand = defineCommand({
  name: 'evaluate',
  describe: 'Measure a trained model on held-out Q&A pairs: answer perplexity, exact match and token F1 of its greedy answers',
  builder: (y) =>
    modelAndSamplingFlags(y, generateConfig().evaluate.preset)
      .option('data', { type: 'string', demandOption: true, describe: 'held-out Q&A text, e.g. the test split gptmed-tokenize --test-split wrote' })
      .option('limit', { type: 'number', describe: 'evaluate only the first N pairs' })
      .option('output', { alias: 'o', type: 'string', default: generateConfig().evaluate.output, describe: 'JSONL of question, reference, answer and scores' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite --output if it exists' })
      .option('json', { type: 'boolean', default: false, describe: 'print the metrics as one JSON object' }),
  handler: async (a) => {
    checkOutput(a.output, a.force);
    const lm = await loadModel({ checkpoint: a.checkpoint, tokenizer: a.tokenizer, device: a.device });
    process.stderr.write(`${lm.backend.line}\n`);
    try {
      let progress: Progress | undefined;
      const onProgress = (done: number, total: number): void => {
        progress ??= new Progress({ label: 'evaluating', total, unit: 'pairs' });
        progress.update(done);
      };
      const report = await evaluate(lm, a.data, { ...samplingRequest(a), limit: a.limit, onProgress });
      progress?.finish();
      writeFileAtomic(a.output, report.records.map(jsonLine).join(''));
      if (a.json) {
        const { records: _records, ...metrics } = report;
        process.stdout.write(`${JSON.stringify({ ...metrics, checkpoint: lm.checkpointDir, data: a.data, output: a.output })}\n`);
      } else {
        process.stdout.write(`${summary(report, a.output)}\n`);
      }
    } finally {
      lm.dispose();
    }
  },
  examples: [
    ['gptmed-evaluate --checkpoint checkpoints/default --data data/tokenized/test.qa.txt', 'score the best checkpoint on the held-out pairs'],
    ['gptmed-evaluate --data held_out.qa.txt --limit 50 -o eval.jsonl --force', 'the first 50 pairs, answers to eval.jsonl'],
  ],
});
