/** The table of commands: each binary and the umbrella `gptmed` run from here. */
import { runBinary, runUmbrella, type GptmedCommand } from './command.js';
import { convertCommand } from './convert.js';
import { trainTokenizerCommand } from './train-tokenizer.js';
import { tokenizeCommand } from './tokenize.js';
import { trainCommand } from './train.js';
import { generateCommand } from './generate.js';
import { evaluateCommand } from './evaluate.js';

export const commands: GptmedCommand[] = [
  convertCommand,
  trainTokenizerCommand,
  tokenizeCommand,
  trainCommand,
  generateCommand,
  evaluateCommand,
];

/** Entry for bin/gptmed-<name>.js, or the umbrella when no name is given. */
export async function start(name?: string): Promise<void> {
  if (name === undefined) return runUmbrella(commands);
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) throw new Error(`unknown command ${name}`);
  return runBinary(cmd);
}
