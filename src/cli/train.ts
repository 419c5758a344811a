/** gptmed-train: flags in, train() out. */
import { devices } from '../backend/index.js';
import { modelSizes, type ModelShape } from '../model/config.js';
import { trainDefaults, type TrainConfig } from '../train/config.js';
import { train } from '../train/trainer.js';
import { defineCommand } from './command.js';

const d = trainDefaults();
const def = (v: unknown): string => ` [default: ${v === null ? 'none' : String(v)}]`;

export const trainCommand = defineCommand({
  name: 'train',
  describe: 'Train a GPT on tokenized shards (gptmed-tokenize output); checkpoints, TensorBoard logs and metrics.jsonl go to --checkpoint-dir',
  // No yargs defaults: a flag counts only when given, so a resumed run keeps its saved settings.
  builder: (y) =>
    y
      .option('model-size', { type: 'string', choices: modelSizes, describe: `Model preset (configs/<size>.json)${def(d.modelSize)}` })
      .option('config', { type: 'string', describe: 'JSON file with model fields (dModel, nLayers, nHeads, dFf, maxSeqLen, dropout) overriding the preset' })
      .option('d-model', { type: 'number', describe: 'Override the preset: embedding width' })
      .option('n-layers', { type: 'number', describe: 'Override the preset: transformer blocks' })
      .option('n-heads', { type: 'number', describe: 'Override the preset: attention heads' })
      .option('d-ff', { type: 'number', describe: 'Override the preset: MLP hidden width' })
      .option('max-seq-len', { type: 'number', describe: 'Override the preset: context length' })
      .option('dropout', { type: 'number', describe: 'Override the preset: dropout rate' })
      .option('train-data', { type: 'string', describe: `Training shard (.npy from gptmed-tokenize, meta.json beside it)${def(d.trainData)}` })
      .option('val-data', { type: 'string', describe: `Validation shard${def(d.valData)}` })
      .option('checkpoint-dir', { type: 'string', describe: `Run directory: step-NNNNNN/, latest, best, tensorboard/, metrics.jsonl${def(d.checkpointDir)}` })
      .option('num-epochs', { type: 'number', describe: `Passes over the training data${def(d.numEpochs)}` })
      .option('max-steps', { type: 'number', describe: `Stop after this many optimizer steps${def(d.maxSteps)}` })
      .option('batch-size', { type: 'number', describe: `Rows per micro-batch${def(d.batchSize)}` })
      .option('grad-accum', { type: 'number', describe: `Micro-batches per optimizer step${def(d.gradAccum)}` })
      .option('learning-rate', { type: 'number', describe: `Peak learning rate (AdamW)${def(d.learningRate)}` })
      .option('min-lr', { type: 'number', describe: `Learning rate at the end of the cosine decay${def(d.minLr)}` })
      .option('warmup-steps', { type: 'number', describe: `Linear warmup steps${def(d.warmupSteps)}` })
      .option('weight-decay', { type: 'number', describe: `Decoupled weight decay on linear weight matrices${def(d.weightDecay)}` })
      .option('grad-clip', { type: 'number', describe: `Clip gradients to this global norm (0: off)${def(d.gradClip)}` })
      .option('eval-interval', { type: 'number', describe: `Evaluate every N steps (and at each epoch end)${def(d.evalInterval)}` })
      .option('eval-batches', { type: 'number', describe: `Validation batches per evaluation (at most)${def(d.evalBatches)}` })
      .option('save-interval', { type: 'number', describe: `Save a checkpoint every N steps (and at each epoch end)${def(d.saveInterval)}` })
      .option('keep-last', { type: 'number', describe: `Step directories to keep (plus best)${def(d.keepLast)}` })
      .option('early-stopping-patience', { type: 'number', describe: `Stop after N evaluations without a better val loss (0: never)${def(d.earlyStoppingPatience)}` })
      .option('log-interval', { type: 'number', describe: `Print a loss line every N steps${def(d.logInterval)}` })
      .option('device', { type: 'string', choices: devices, describe: `Backend (see MANUAL "backends")${def(d.device)}` })
      .option('seed', { type: 'number', describe: `Seed of the init, the data order and dropout${def(d.seed)}` })
      .option('resume', { type: 'boolean', describe: 'Continue the run in --checkpoint-dir from its latest checkpoint' })
      .option('resume-from', { type: 'string', describe: 'Continue from this checkpoint (a step-NNNNNN directory, or a run directory: its latest)' })
      .option('quick-test', { type: 'boolean', describe: 'A short smoke run: batch 4, 1 epoch, at most 100 steps (configs/train.json quickTest)' })
      .option('force', { type: 'boolean', describe: 'Replace a run already in --checkpoint-dir' })
      .conflicts('resume', 'resume-from')
      .conflicts('force', ['resume', 'resume-from']),
  examples: [
    ['gptmed-train --model-size tiny --train-data data/tokenized/train.npy --val-data data/tokenized/val.npy', 'train the tiny preset'],
    ['gptmed-train --model-size small --num-epochs 10 --batch-size 16 --learning-rate 3e-4 --checkpoint-dir checkpoints/default', 'gptmed-style run'],
    ['gptmed-train --resume --checkpoint-dir checkpoints/default', 'continue an interrupted run where it stopped'],
    ['gptmed-train --config my-model.json --d-model 192 --quick-test', 'a custom model size, a short smoke run'],
  ],
  handler: async (args) => {
    const given: Partial<TrainConfig> = {
      modelSize: args.modelSize,
      numEpochs: args.numEpochs,
      batchSize: args.batchSize,
      learningRate: args.learningRate,
      trainData: args.trainData,
      valData: args.valData,
      checkpointDir: args.checkpointDir,
      device: args.device,
      seed: args.seed,
      maxSteps: args.maxSteps,
      gradAccum: args.gradAccum,
      warmupSteps: args.warmupSteps,
      minLr: args.minLr,
      weightDecay: args.weightDecay,
      gradClip: args.gradClip,
      evalInterval: args.evalInterval,
      evalBatches: args.evalBatches,
      saveInterval: args.saveInterval,
      keepLast: args.keepLast,
      earlyStoppingPatience: args.earlyStoppingPatience,
      logInterval: args.logInterval,
    };
    const overrides: Partial<ModelShape> = {
      dModel: args.dModel,
      nLayers: args.nLayers,
      nHeads: args.nHeads,
      dFf: args.dFf,
      maxSeqLen: args.maxSeqLen,
      dropout: args.dropout,
    };
    const result = await train({
      given,
      quickTest: args.quickTest,
      modelConfigFile: args.config,
      modelOverrides: Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
      resume: args.resume,
      resumeFrom: args.resumeFrom,
      force: args.force,
      log: (line) => process.stderr.write(`${line}\n`),
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
