/** gptmed-train: flags in, train() out; every setting's flag comes from its declaration. */
import { pickSettings, type Setting } from '../common/settings.js';
import { modelShapeSettings, type ModelShape } from '../model/config.js';
import { quickTestSetting, trainDefaults, trainSettings, type TrainConfig } from '../train/config.js';
import { defineCommand } from './command.js';
import { forceFlag, quietFlag, settingFlags } from './flags.js';

const [modelSizeSetting, ...runSettings] = trainSettings;

const configFlag: Setting = {
  name: 'config',
  type: 'path',
  description: 'JSON file with any training setting and model field (the keys of configs/train.json and configs/<size>.json; a run\'s config.json), under the flags',
};

/** The flags that choose how the run starts rather than what it trains (no yargs defaults: see settingFlags). */
const startFlags: readonly Setting[] = [
  { name: 'resume', type: 'boolean', description: 'Continue the run in --checkpoint-dir from its latest checkpoint' },
  { name: 'resumeFrom', type: 'path', description: 'Continue from this checkpoint (a step-NNNNNN directory, or a run directory: its latest)' },
  quickTestSetting,
  forceFlag('Replace a run already in --checkpoint-dir', false),
  quietFlag('No progress lines (the summary is still printed)'),
];

/** gptmed-train's flags, in --help order (MANUAL's table follows it). */
export const trainFlags: readonly Setting[] = [modelSizeSetting, configFlag, ...modelShapeSettings, ...runSettings, ...startFlags];

export const trainCommand = defineCommand({
  settings: trainFlags,
  // No yargs defaults: a flag counts only when given, so a resumed run keeps its saved settings.
  builder: (y) =>
    settingFlags(y, trainFlags, trainDefaults() as unknown as Record<string, string | number | null>)
      .conflicts('resume', 'resume-from')
      .conflicts('force', ['resume', 'resume-from']),
  examples: [
    ['gptmed-train --model-size tiny --train-data data/tokenized/train.npy --val-data data/tokenized/val.npy', 'train the tiny preset'],
    ['gptmed-train --model-size small --num-epochs 10 --batch-size 16 --learning-rate 3e-4 --checkpoint-dir checkpoints/default', 'gptmed-style run'],
    ['gptmed-train --resume --checkpoint-dir checkpoints/default', 'continue an interrupted run where it stopped'],
    ['gptmed-train --config my-model.json --d-model 192 --quick-test', 'a custom model size, a short smoke run'],
    [
      'gptmed-train --init-from checkpoints/pretrain --train-data data/qa/train.npy --val-data data/qa/val.npy --checkpoint-dir checkpoints/finetune',
      "fine-tune: a new run from another run's best weights (its shape, its tokenizer)",
    ],
  ],
  handler: async (args) => {
    // Loaded on use: the trainer pulls in tfjs, which --help does not need.
    const { train } = await import('../train/trainer.js');
    const result = await train({
      given: pickSettings<TrainConfig>(trainSettings, args),
      quickTest: args.quickTest as boolean | undefined,
      modelConfigFile: args.config as string | undefined,
      modelOverrides: pickSettings<ModelShape>(modelShapeSettings, args),
      resume: args.resume as boolean | undefined,
      resumeFrom: args.resumeFrom as string | undefined,
      force: args.force as boolean | undefined,
      quiet: args.quiet as boolean | undefined,
      log: args.quiet ? () => {} : (line) => process.stderr.write(`${line}\n`),
    });
    const best =
      result.bestValLoss === null
        ? 'no evaluation'
        : `best val loss ${result.bestValLoss.toFixed(4)} (perplexity ${Math.exp(result.bestValLoss).toFixed(2)}) at step ${result.bestStep}`;
    process.stdout.write(
      `trained to step ${result.steps}${result.stoppedBy === 'early-stopping' ? ' (early stopping)' : ''}: ${best}; ` +
        `unigram baseline ${result.unigramBaseline.toFixed(4)}; checkpoints in ${result.runDir}\n`,
    );
  },
});
