/** gptmed-evaluate: answer perplexity, exact match and token F1 on held-out Q&A pairs. */
import { writeFileAtomic } from '../common/atomic.js';
import { checkOutput } from '../common/output.js';
import { Progress } from '../common/progress.js';
import type { Setting } from '../common/settings.js';
import { evaluate, generateConfig, jsonLine, loadModel, type EvaluateReport } from '../generate/index.js';
import { limitSetting } from '../generate/evaluate.js';
import { defineCommand } from './command.js';
import { forceFlag, quietFlag, settingFlags } from './flags.js';
import { modelAndSamplingFlags, modelAndSamplingSettings, samplingRequest, type ModelArgs } from './generate.js';

function summary(r: EvaluateReport, output: string | undefined): string {
  const s = r.stops;
  return [
    `pairs              ${r.pairs}${r.skippedBlocks ? ` (${r.skippedBlocks} malformed blocks skipped)` : ''}`,
    `answer perplexity  ${r.answerPerplexity.toFixed(3)} over ${r.answerTokens} reference answer tokens${r.truncatedPairs ? ` (${r.truncatedPairs} pairs cut to fit the context)` : ''}`,
    `exact match        ${r.exactMatch.toFixed(3)}`,
    `token F1           ${r.tokenF1.toFixed(3)}`,
    `answers ended by   end token ${s.eos}, new question ${s.question}, --max-new-tokens ${s.length}, full context ${s.context}`,
    `time               ${r.seconds.toFixed(1)} s (${(r.seconds / r.pairs).toFixed(2)} s a pair, generation ${r.tokensPerSecond.toFixed(1)} tokens/s)`,
    ...(output ? [`answers            ${output}`] : []),
  ].join('\n');
}

const evaluateFlags: readonly Setting[] = [
  { name: 'data', type: 'path', description: 'held-out Q&A text, e.g. the test split gptmed-tokenize --test-split wrote' },
  limitSetting,
  { name: 'output', type: 'path', alias: 'o', description: 'also write the JSONL of question, reference, answer and scores here', defaultText: 'none: only the metrics are printed' },
  forceFlag('overwrite --output if it exists'),
  { name: 'json', type: 'boolean', default: false, description: 'print the metrics as one JSON object' },
  quietFlag('no backend line or progress on stderr'),
];

interface EvaluateArgs extends ModelArgs {
  data: string;
  limit?: number;
  output?: string;
  force: boolean;
  json: boolean;
}

export const evaluateCommand = defineCommand({
  settings: [...modelAndSamplingSettings, ...evaluateFlags],
  builder: (y) => settingFlags(modelAndSamplingFlags(y, generateConfig().evaluate.preset), evaluateFlags).demandOption('data'),
  handler: async (args) => {
    const a = args as unknown as EvaluateArgs;
    if (a.output !== undefined) checkOutput(a.output, a.force);
    const lm = await loadModel({ checkpoint: a.checkpoint, tokenizer: a.tokenizer, device: a.device });
    if (!a.quiet) process.stderr.write(`${lm.backend.line}\n`);
    try {
      let progress: Progress | undefined;
      const onProgress = (done: number, total: number): void => {
        progress ??= new Progress({ label: 'evaluating', total, unit: 'pairs', quiet: a.quiet });
        progress.update(done);
      };
      const report = await evaluate(lm, a.data, { ...samplingRequest(a), limit: a.limit, onProgress });
      progress?.finish();
      if (a.output !== undefined) writeFileAtomic(a.output, report.records.map(jsonLine).join(''));
      if (a.json) {
        const { records: _records, ...metrics } = report;
        process.stdout.write(`${JSON.stringify({ ...metrics, checkpoint: lm.checkpointDir, data: a.data, output: a.output ?? null })}\n`);
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
