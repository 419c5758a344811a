/** gptmed-generate: answer questions with a trained model (one, a file of them, or a prompt loop). */
import * as readline from 'node:readline';
import type { Argv } from 'yargs';
import { AtomicFileWriter } from '../common/atomic.js';
import { UsageError } from '../common/errors.js';
import { Progress } from '../common/progress.js';
import { devices, type Device } from '../backend/index.js';
import {
  defaultCheckpointDir,
  generate,
  jsonLine,
  loadModel,
  readQuestionFile,
  resolveOptions,
  type GenerateResult,
  type GenerationOptions,
  type GenerationRequest,
  type LoadedModel,
  type PresetName,
  type QuestionFile,
} from '../generate/index.js';
import { checkOutput } from '../common/output.js';
import { initFromLine } from '../generate/load.js';
import { generationSettings, presetSetting } from '../generate/options.js';
import { checkQuestionSizes } from '../generate/question-size.js';
import { checkPromptText } from '../generate/questions.js';
import { pickSettings, type Setting } from '../common/settings.js';
import { defineCommand, PARSER_CONFIGURATION } from './command.js';
import { forceFlag, quietFlag, settingFlags } from './flags.js';

/** Where the model is: flags of gptmed-generate and gptmed-evaluate. */
const modelFlags: readonly Setting[] = [
  {
    name: 'checkpoint',
    type: 'path',
    description: 'run directory (its best checkpoint), step directory, or best/latest file',
    defaultText: `best in ${defaultCheckpointDir()} (configs/train.json)`,
  },
  { name: 'tokenizer', type: 'path', description: 'tokenizer .model; must be the one the model was trained with', defaultText: 'the one recorded in the checkpoint' },
];

const deviceFlag: Setting = { name: 'device', type: 'string', choices: devices, default: 'auto', description: 'tfjs backend' };

/** How answers are drawn: the generation options but the number of samples (evaluate draws one). */
const samplingSettings = generationSettings.filter((s) => s.name !== 'numSamples');

/** The settings behind modelAndSamplingFlags, for naming a library error's field by its flag. */
export const modelAndSamplingSettings: readonly Setting[] = [...modelFlags, presetSetting, ...samplingSettings, deviceFlag];

/** Flags shared by gptmed-generate and gptmed-evaluate: where the model is, and how answers are drawn. */
export function modelAndSamplingFlags<T>(y: Argv<T>, presetDefault?: PresetName): Argv<T> {
  // The defaults of configs/generate.json under the preset, shown in --help; resolveOptions applies them.
  const shown = { ...resolveOptions({ preset: presetDefault }), preset: presetDefault ?? 'none' };
  // With boolean negation on, yargs reads `--no-repeat-ngram 3` as `--repeat-ngram false` and a stray 3.
  // Off for these two commands only (convert's --no-header keeps it). parserConfiguration replaces the
  // whole setting, so the shared one from command.ts is repeated here.
  const parsed = y.parserConfiguration({ ...PARSER_CONFIGURATION, 'boolean-negation': false });
  return settingFlags(settingFlags(settingFlags(parsed, modelFlags), [presetSetting, ...samplingSettings], shown), [deviceFlag]);
}

/** The generation options the user gave explicitly (the rest come from the preset and the defaults). */
export function samplingRequest(args: { preset?: PresetName }): GenerationRequest {
  return { preset: args.preset, ...pickSettings<GenerationOptions>(generationSettings, args) };
}

/** The flags both commands read (the yargs types of declared flags are not inferred). */
export interface ModelArgs {
  checkpoint?: string;
  tokenizer?: string;
  device: Device;
  preset?: PresetName;
  quiet: boolean;
}

/** A note on stderr for anything about an answer that the user should know. */
function notes(result: GenerateResult): void {
  if (result.droppedPromptTokens > 0) {
    process.stderr.write(`note: the question was too long for the model's context; its first ${result.droppedPromptTokens} tokens were left out\n`);
  }
  const byLength = result.answers.filter((a) => a.stop === 'length').length;
  if (byLength > 0) process.stderr.write(`note: ${byLength === 1 ? 'the answer' : `${byLength} answers`} reached --max-new-tokens (${result.options.maxNewTokens}) before the model ended it\n`);
  if (result.answers.some((a) => a.stop === 'context')) process.stderr.write(`note: the model's context (${result.promptTokens} prompt tokens + answer) filled up before the answer ended\n`);
}

/** Answer one question on stdout: streamed as it comes, or whole. */
async function answerToStdout(lm: LoadedModel, question: string, request: GenerationRequest, stream: boolean): Promise<void> {
  const numSamples = request.numSamples ?? 1;
  const header = (sample: number): string => (numSamples > 1 ? `[${sample + 1}/${numSamples}] ` : '');
  let current = -1;
  const onText = (text: string, sample: number): void => {
    if (sample !== current) {
      if (current >= 0) process.stdout.write('\n');
      process.stdout.write(header(sample));
      current = sample;
    }
    process.stdout.write(text);
  };
  const result = await generate(lm, question, { ...request, onText: stream ? onText : undefined });
  if (stream) {
    // Samples whose answer was empty printed nothing yet.
    for (let s = current + 1; s < numSamples; s++) process.stdout.write(`${current >= 0 || s > 0 ? '\n' : ''}${header(s)}`);
    process.stdout.write('\n');
  } else {
    process.stdout.write(`${result.answers.map((a, s) => `${header(s)}${a.text}`).join('\n')}\n`);
  }
  notes(result);
}

async function interactive(lm: LoadedModel, request: GenerationRequest, stream: boolean): Promise<void> {
  const tty = Boolean(process.stdin.isTTY);
  const rl = readline.createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
  rl.on('SIGINT', () => rl.close());
  if (tty) process.stderr.write('Ask a question; an empty line asks nothing, `exit` or Ctrl-D leaves.\n');
  rl.setPrompt('Q: ');
  if (tty) rl.prompt();
  for await (const line of rl) {
    const question = line.trim();
    if (question === 'exit' || question === 'quit') break;
    if (question.includes('\uFFFD')) {
      process.stderr.write('note: that question holds bytes that are not UTF-8; type it in UTF-8 (check the terminal\'s encoding)\n');
      continue;
    }
    if (question !== '') await answerToStdout(lm, question, request, stream);
    if (tty) rl.prompt();
  }
  rl.close();
}

/** The questions of --input-file, checked whole before the model loads. */
function readQuestions(file: string): QuestionFile {
  const read = readQuestionFile(file);
  if (read.skipped.length > 0) process.stderr.write(`note: ${file}: skipped ${read.skipped.length} malformed block(s), first at ${read.skipped[0]}\n`);
  checkQuestionSizes(file, read.questions);
  return read;
}

async function answerFile(lm: LoadedModel, { questions, format }: QuestionFile, request: GenerationRequest, output: string | undefined, quiet: boolean): Promise<void> {
  const writer = output ? new AtomicFileWriter(output) : null;
  const write = (s: string): void => {
    if (writer) writer.write(s);
    else process.stdout.write(s);
  };
  const progress = new Progress({ label: 'answering', total: questions.length, unit: 'questions', quiet: quiet || !output });
  try {
    let done = 0;
    for (const q of questions) {
      const result = await generate(lm, q.question, request);
      if (result.droppedPromptTokens > 0) progress.log(`note: question ${done + 1} was cut by ${result.droppedPromptTokens} tokens to fit the context`);
      result.answers.forEach((a, sample) =>
        write(jsonLine({ question: result.question, answer: a.text, sample, stop: a.stop, tokens: a.generatedTokens, ...(format === 'qa' ? { reference: q.reference } : {}) })),
      );
      progress.update(++done);
    }
    writer?.commit();
    progress.finish();
    if (output) process.stdout.write(`wrote ${questions.length} question(s) to ${output}\n`);
  } catch (err) {
    writer?.abort();
    throw err;
  }
}

const generateFlags: readonly Setting[] = [
  { name: 'prompt', type: 'string', alias: 'p', description: 'the question to answer' },
  { name: 'inputFile', type: 'path', description: 'questions, one a line (or Q&A text): answers as JSONL' },
  { name: 'output', type: 'path', alias: 'o', description: 'with --input-file: write the JSONL here instead of stdout' },
  forceFlag('overwrite --output if it exists'),
  { name: 'interactive', type: 'boolean', alias: 'i', default: false, description: 'a prompt loop; `exit` or Ctrl-D leaves' },
  { name: 'stream', type: 'boolean', default: false, description: 'print the answer as it is generated' },
  quietFlag('no backend line or progress on stderr'),
];

interface GenerateArgs extends ModelArgs {
  prompt?: string;
  inputFile?: string;
  output?: string;
  force: boolean;
  interactive: boolean;
  stream: boolean;
}

/** Exactly one mode, --output only with --input-file, a question that can be encoded. */
function checkModes(a: GenerateArgs): true {
  const modes = [a.prompt !== undefined, a.inputFile !== undefined, a.interactive].filter(Boolean).length;
  // A UserError, not a string: yargs would pass a returned string on as an internal error.
  if (modes !== 1) throw new UsageError('give exactly one of --prompt, --input-file or --interactive (see gptmed-generate --help)');
  if (a.output !== undefined && a.inputFile === undefined) throw new UsageError('--output goes with --input-file (see gptmed-generate --help)');
  if (a.prompt !== undefined) checkPromptText(a.prompt);
  return true;
}

const numSamplesSetting = generationSettings.filter((s) => s.name === 'numSamples');

/** gptmed-generate's flags, in --help order (MANUAL's table follows it). */
export const generateFlagSettings: readonly Setting[] = [...modelAndSamplingSettings, ...generateFlags, ...numSamplesSetting];

export const generateCommand = defineCommand({
  settings: generateFlagSettings,
  builder: (y) =>
    settingFlags(settingFlags(modelAndSamplingFlags(y), generateFlags), numSamplesSetting, resolveOptions() as unknown as Record<string, number>).check((a) =>
      checkModes(a as unknown as GenerateArgs),
    ),
  handler: async (args) => {
    const a = args as unknown as GenerateArgs;
    const request = samplingRequest(a);
    // Input and output are checked before the model loads: a mistake in either costs no wait.
    if (a.output !== undefined) checkOutput(a.output, a.force);
    const questions = a.inputFile !== undefined ? readQuestions(a.inputFile) : undefined;
    const lm = await loadModel({ checkpoint: a.checkpoint, tokenizer: a.tokenizer, device: a.device });
    if (!a.quiet) process.stderr.write(`${[lm.backend.line, initFromLine(lm)].filter((l) => l !== null).join('\n')}\n`);
    try {
      if (questions) await answerFile(lm, questions, request, a.output, a.quiet);
      else if (a.interactive) await interactive(lm, request, a.stream);
      else await answerToStdout(lm, a.prompt!, request, a.stream);
    } finally {
      lm.dispose();
    }
  },
  examples: [
    ['gptmed-generate --prompt "What is Python?"', 'answer one question with the best checkpoint'],
    ['gptmed-generate --checkpoint checkpoints/default --preset creative --num-samples 3 -p "Why is the sky blue?"', 'three creative answers'],
    ['gptmed-generate --input-file questions.txt -o answers.jsonl', 'answer a file of questions, one a line'],
    ['gptmed-generate --interactive --stream', 'a question loop, answers printed as they come'],
  ],
});
