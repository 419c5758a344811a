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
import type { Setting } from '../common/settings.js';
import { namedByFlag } from './flags.js';

/** What `gptmed --help` lists of a command, known without loading its module (see main.ts). */
export interface CommandEntry {
  /** Subcommand name under `gptmed` (binary `gptmed-<name>`). */
  name: string;
  /** Positional part of the usage line, e.g. '<input>' ('' for none). */
  positionals?: string;
  describe: string;
  load: () => Promise<GptmedCommand>;
}

export interface GptmedCommand<A = Record<string, unknown>> {
  builder: (y: Argv) => Argv<A>;
  handler: (args: ArgumentsCamelCase<A>) => Promise<void> | void;
  /** The settings its flags are made from: a library error about one the user gave names its flag. */
  settings?: readonly Setting[];
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

function report(scriptName: string, err: unknown, settings: readonly Setting[]): number {
  err = namedByFlag(err, settings);
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

async function run(y: Argv, scriptName: string, settings: readonly Setting[] = []): Promise<void> {
  // Errors that escape the awaited chain (a callback, a worker) are still one line. Registered before
  // any wasm module loads, so this runs ahead of Emscripten's own handler, which dumps its source.
  const fatal = (err: unknown): void => {
    process.exit(report(scriptName, err, settings));
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  exitOnSignals(scriptName);
  try {
    await y.parseAsync();
  } catch (err) {
    process.exitCode = report(scriptName, err, settings);
  }
}

/** The yargs command of `cmd`: `$0` in its own binary, its name under the umbrella. */
function commandSpec(entry: CommandEntry, cmd: GptmedCommand, umbrella: boolean) {
  const scriptName = umbrella ? `gptmed ${entry.name}` : `gptmed-${entry.name}`;
  return {
    command: [umbrella ? entry.name : '$0', entry.positionals].filter(Boolean).join(' '),
    describe: entry.describe,
    builder: (sub: Argv) => {
      let b = cmd.builder(sub) as Argv;
      for (const [line, what] of cmd.examples ?? []) b = b.example(umbrella ? line.replace(/^gptmed-/, 'gptmed ') : line, what);
      return withNumbersChecked(b, scriptName);
    },
    handler: cmd.handler,
  };
}

/** Run one command as its own binary, `gptmed-<name>`. */
export async function runBinary(entry: CommandEntry): Promise<void> {
  const scriptName = `gptmed-${entry.name}`;
  const cmd = await entry.load();
  const y = configure(yargs(hideBin(process.argv)), scriptName).command(commandSpec(entry, cmd, false));
  await run(y, scriptName, cmd.settings);
}

/**
 * Run the umbrella `gptmed <command>`: only the module of the command named is loaded (tfjs alone costs a
 * second at start); the others are listed by name and description for --help.
 */
export async function runUmbrella(entries: readonly CommandEntry[]): Promise<void> {
  const args = hideBin(process.argv);
  const chosen = entries.find((e) => e.name === args[0]);
  const cmd = chosen ? await chosen.load() : undefined;
  let y = configure(yargs(args), 'gptmed');
  for (const entry of entries) {
    y = entry === chosen && cmd
      ? y.command(commandSpec(entry, cmd, true))
      : y.command([entry.name, entry.positionals].filter(Boolean).join(' '), entry.describe);
  }
  y = y.demandCommand(1, 'name a command').example('gptmed convert faq.csv -o data/faq.qa.txt', 'run a stage');
  await run(y, 'gptmed', cmd?.settings);
}
