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
  PRESET_NAMES,
  readQuestionFile,
  resolveOptions,
  type GenerateResult,
  type GenerationRequest,
  type LoadedModel,
  type PresetName,
  type QuestionFile,
} from '../generate/index.js';
import { checkOutput } from '../common/output.js';
import { checkQuestionSizes } from '../generate/question-size.js';
import { checkPromptText } from '../generate/questions.js';
import { defineCommand, PARSER_CONFIGURATION } from './command.js';

/** Flags shared by gptmed-generate and gptmed-evaluate: where the model is, and how answers are drawn. */
export function modelAndSamplingFlags<T>(y: Argv<T>, presetDefault?: PresetName) {
  const shown = resolveOptions({ preset: presetDefault });
  return y
    // With boolean negation on, yargs reads `--no-repeat-ngram 3` as `--repeat-ngram false` and a stray 3.
    // Off for these two commands only (convert's --no-header keeps it). parserConfiguration replaces the
    // whole setting, so the shared one from command.ts is repeated here.
    .parserConfiguration({ ...PARSER_CONFIGURATION, 'boolean-negation': false })
    .option('checkpoint', { type: 'string', describe: 'run directory (its best checkpoint), step directory, or best/latest file', defaultDescription: `best in ${defaultCheckpointDir()} (configs/train.json)` })
    .option('tokenizer', { type: 'string', describe: 'tokenizer .model; must be the one the model was trained with', defaultDescription: 'the one recorded in the checkpoint' })
    .option('preset', { choices: PRESET_NAMES, describe: 'a set of sampling options (configs/generate.json); explicit flags override it', defaultDescription: presetDefault ?? 'none' })
    .option('max-new-tokens', { alias: 'max-length', type: 'number', describe: 'most tokens in one answer', defaultDescription: String(shown.maxNewTokens) })
    .option('temperature', { type: 'number', describe: 'sampling temperature; 0 is greedy', defaultDescription: String(shown.temperature) })
    .option('top-k', { type: 'number', describe: 'sample from the k most likely tokens; 0 turns it off', defaultDescription: String(shown.topK) })
    .option('top-p', { type: 'number', describe: 'sample from the smallest set of tokens whose probability reaches p; 1 turns it off', defaultDescription: String(shown.topP) })
    .option('repetition-penalty', { type: 'number', describe: 'penalty on tokens already in the answer; 1 turns it off', defaultDescription: String(shown.repetitionPenalty) })
    .option('no-repeat-ngram', { type: 'number', describe: 'never repeat an n-gram of this size in the answer; 0 turns it off', defaultDescription: String(shown.noRepeatNgram) })
    .option('seed', { type: 'number', describe: 'seed of the sampler: the same seed gives the same answers', defaultDescription: String(shown.seed) })
    .option('device', { choices: devices, default: 'auto' as Device, describe: 'tfjs backend' });
}

interface SamplingArgs {
  preset?: PresetName;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  noRepeatNgram?: number;
  seed?: number;
}

/** The generation options the user gave explicitly (the rest come from the preset and the defaults). */
export function samplingRequest(args: SamplingArgs): GenerationRequest {
  const { preset, maxNewTokens, temperature, topK, topP, repetitionPenalty, noRepeatNgram, seed } = args;
  return { preset, maxNewTokens, temperature, topK, topP, repetitionPenalty, noRepeatNgram, seed };
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

async function answerFile(lm: LoadedModel, { questions, format }: QuestionFile, request: GenerationRequest, output: string | undefined): Promise<void> {
  const writer = output ? new AtomicFileWriter(output) : null;
  const write = (s: string): void => {
    if (writer) writer.write(s);
    else process.stdout.write(s);
  };
  const progress = new Progress({ label: 'answering', total: questions.length, unit: 'questions', quiet: !output });
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
    if (output) process.stderr.write(`wrote ${questions.length} question(s) to ${output}\n`);
  } catch (err) {
    writer?.abort();
    throw err;
  }
}

export const generateCommand = defineCommand({
  name: 'generate',
  describe: 'Answer questions with a trained model; answers stop by themselves at the end-of-answer token',
  builder: (y) =>
    modelAndSamplingFlags(y)
      .option('prompt', { alias: 'p', type: 'string', describe: 'the question to answer' })
      .option('input-file', { type: 'string', describe: 'questions, one a line (or Q&A text): answers as JSONL' })
      .option('output', { alias: 'o', type: 'string', describe: 'with --input-file: write the JSONL here instead of stdout' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite --output if it exists' })
      .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'a prompt loop; `exit` or Ctrl-D leaves' })
      .option('stream', { type: 'boolean', default: false, describe: 'print the answer as it is generated' })
      .option('num-samples', { type: 'number', describe: 'answers to draw per question', defaultDescription: String(resolveOptions().numSamples) })
      .check((a) => {
        const modes = [a.prompt !== undefined, a.inputFile !== undefined, a.interactive].filter(Boolean).length;
        // A UserError, not a string: yargs would pass a returned string on as an internal error.
        if (modes !== 1) throw new UsageError('give exactly one of --prompt, --input-file or --interactive (see gptmed-generate --help)');
        if (a.output !== undefined && a.inputFile === undefined) throw new UsageError('--output goes with --input-file (see gptmed-generate --help)');
        if (a.prompt !== undefined) checkPromptText(a.prompt);
        return true;
      }),
  handler: async (a) => {
    const request: GenerationRequest = { ...samplingRequest(a), numSamples: a.numSamples };
    // Input and output are checked before the model loads: a mistake in either costs no wait.
    if (a.output !== undefined) checkOutput(a.output, a.force);
    const questions = a.inputFile !== undefined ? readQuestions(a.inputFile) : undefined;
    const lm = await loadModel({ checkpoint: a.checkpoint, tokenizer: a.tokenizer, device: a.device });
    process.stderr.write(`${lm.backend.line}\n`);
    try {
      if (questions) await answerFile(lm, questions, request, a.output);
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
