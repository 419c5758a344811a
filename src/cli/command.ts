/**
 * The shape of a command module and the runner shared by every binary.
 * A command module only declares flags and calls the library; errors from the
 * library become one line on stderr and a non-zero exit, never a stack trace.
 */
import * as fs from 'node:fs';
import type { Argv, ArgumentsCamelCase } from 'yargs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { errorLine, UsageError, UserError } from '../common/errors.js';
import { packageRoot } from '../common/paths.js';

export interface GptmedCommand<A = Record<string, unknown>> {
  /** Subcommand name under `gptmed` (binary `gptmed-<name>`). */
  name: string;
  /** Positional part of the usage line, e.g. '<input>' ('' for none). */
  positionals?: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  handler: (args: ArgumentsCamelCase<A>) => Promise<void> | void;
  /** Usage examples: [command line, what it does]. */
  examples?: Array<[string, string]>;
}

/** Erases the flag types so the command table can hold commands of every kind. */
export function defineCommand<A>(cmd: GptmedCommand<A>): GptmedCommand {
  return cmd as unknown as GptmedCommand;
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(`${packageRoot}/package.json`, 'utf8')) as { version: string };
  return pkg.version;
}

function report(scriptName: string, err: unknown): number {
  process.stderr.write(`${scriptName}: error: ${errorLine(err)}\n`);
  if (process.env.GPTMED_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return err instanceof UserError ? err.exitCode : 1;
}

/** yargs parser settings every command shares (a command may add to them: they replace, not merge). */
export const PARSER_CONFIGURATION = {
  // A flag given twice keeps its last value, as in most command-line tools.
  'duplicate-arguments-array': false,
} as const;

function configure(y: Argv, scriptName: string): Argv {
  return y
    .scriptName(scriptName)
    .parserConfiguration(PARSER_CONFIGURATION)
    .strict()
    .help()
    .alias('h', 'help')
    .version(version())
    .wrap(Math.min(110, y.terminalWidth()))
    .fail((msg, err) => {
      // Usage errors (unknown flag, missing argument, bad choice, a failed .check()) come from
      // yargs itself, as a message or as its own YError; anything else is the handler's to report.
      if (err && err.name !== 'YError') throw err;
      const text = (msg ?? err?.message ?? 'bad usage').replace(/\s*\n\s*/g, ' ');
      throw new UsageError(`${text} (see ${scriptName} --help)`);
    });
}

/**
 * A number flag given something that is not a number ("--max-length abc") reaches yargs
 * as NaN: refused here, as any usage error, before a stage sees it.
 */
function withNumbersChecked(y: Argv, scriptName: string): Argv {
  const numberFlags = (y as unknown as { getOptions(): { number: string[] } }).getOptions().number;
  return y.check((argv) => {
    for (const flag of numberFlags) {
      const v = argv[flag];
      if (typeof v === 'number' && !Number.isFinite(v)) throw new UsageError(`--${flag} must be a number (see ${scriptName} --help)`);
    }
    return true;
  });
}

/**
 * Ctrl-C or SIGTERM: one line and exit 128 + the signal's number; the exit
 * removes the temporaries (common/atomic). A stage that stops gracefully
 * instead (training saves a checkpoint first) installs its own handler while
 * it runs, and this one stands aside.
 */
function exitOnSignals(scriptName: string): void {
  const codes: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  for (const [signal, code] of Object.entries(codes) as Array<[NodeJS.Signals, number]>) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      process.stderr.write(`\n${scriptName}: error: interrupted\n`);
      process.exit(code);
    };
    process.on(signal, onSignal);
  }
}

async function run(y: Argv, scriptName: string): Promise<void> {
  // Errors that escape the awaited chain (a callback, a worker) are still one line. Registered before
  // any wasm module loads, so this runs ahead of Emscripten's own handler, which dumps its source.
  const fatal = (err: unknown): void => {
    process.exit(report(scriptName, err));
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  exitOnSignals(scriptName);
  try {
    await y.parseAsync();
  } catch (err) {
    process.exitCode = report(scriptName, err);
  }
}

/** Run one command as its own binary, `gptmed-<name>`. */
export async function runBinary(cmd: GptmedCommand): Promise<void> {
  const scriptName = `gptmed-${cmd.name}`;
  let y = configure(yargs(hideBin(process.argv)), scriptName).command({
    command: ['$0', cmd.positionals].filter(Boolean).join(' '),
    describe: cmd.describe,
    builder: (sub: Argv) => withNumbersChecked(cmd.builder(sub) as Argv, scriptName),
    handler: cmd.handler,
  });
  for (const [line, what] of cmd.examples ?? []) y = y.example(line, what);
  await run(y, scriptName);
}

/** Run the umbrella `gptmed <command>` over all commands. */
export async function runUmbrella(cmds: GptmedCommand[]): Promise<void> {
  let y = configure(yargs(hideBin(process.argv)), 'gptmed');
  for (const cmd of cmds) {
    y = y.command({
      command: [cmd.name, cmd.positionals].filter(Boolean).join(' '),
      describe: cmd.describe,
      builder: (sub: Argv) => {
        let b = cmd.builder(sub) as Argv;
        for (const [line, what] of cmd.examples ?? []) b = b.example(line.replace(/^gptmed-/, 'gptmed '), what);
        return withNumbersChecked(b, `gptmed ${cmd.name}`);
      },
      handler: cmd.handler,
    });
  }
  y = y.demandCommand(1, 'name a command').example('gptmed convert faq.csv -o data/faq.qa.txt', 'run a stage');
  await run(y, 'gptmed');
}
