import { UserError } from '../common/errors.js';
import { defineCommand, type GptmedCommand } from './command.js';

/** A command whose stage has not landed yet: it says so in one line and exits 1. */
export function notYetCommand(name: string, describe: string, issue: number): GptmedCommand {
  return defineCommand({
    name,
    describe: `${describe} (not implemented yet)`,
    builder: (y) => y,
    handler: () => {
      throw new UserError(`gptmed-${name} is not implemented yet (tracked in issue ${issue})`);
    },
  });
}
