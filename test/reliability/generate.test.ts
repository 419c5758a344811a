/**
 * Reliability of gptmed-generate and gptmed-evaluate (issue 10): every documented
 * flag spelling parses, outputs are checked before the work, absurd questions
 * and broken checkpoints give one line that names the right thing.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { trainTinyRun } from '../generate/tiny-model.js';
import { repoRoot, runCli, tempDir, type CliResult } from '../helpers.js';

/** The text of one `<!-- section: NAME ... -->` of MANUAL.md. */
function manualSection(name: string): string {
  const manual = fs.readFileSync(path.join(repoRoot, 'MANUAL.md'), 'utf8');
  const start = manual.indexOf(`<!-- section: ${name} `);
  const end = manual.indexOf(`<!-- end section: ${name} -->`);
  assert.ok(start >= 0 && end > start, `MANUAL.md has a section "${name}"`);
  return manual.slice(start, end);
}

/**
 * Every flag spelling a section documents for `gptmed-<command>`: the flags on its example command
 * lines, and every inline code span that is a flag (`--top-k`, `-o`, `--input-file F`).
 */
function documentedFlags(command: string, text: string): string[] {
  const flags = new Set<string>();
  const [prose, code] = [[] as string[], [] as string[]];
  text.split('```').forEach((part, i) => (i % 2 === 0 ? prose : code).push(part));
  for (const line of code.join('\n').split('\n')) {
    if (!line.startsWith(`gptmed-${command} `)) continue;
    for (const word of line.split(/\s+/)) {
      const m = /^\[?(--?[a-z][\w-]*)/.exec(word);
      if (m) flags.add(m[1]);
    }
  }
  for (const [, span] of prose.join('\n').matchAll(/`([^`\n]+)`/g)) {
    const m = /^(--?[a-z][\w-]*)(?: [A-Z]+)?$/.exec(span);
    if (m) flags.add(m[1]);
  }
  return [...flags].sort();
}

const booleans = new Set(['--stream', '--interactive', '-i', '--force', '-f', '--quiet', '-q', '--json']);

function documentedRuns(dir: string): Record<string, string[][]> {
  const questions = path.join(dir, 'questions.txt');
  fs.writeFileSync(questions, 'What is Python?\n');
  const values: Record<string, string> = { '--preset': 'greedy', '--device': 'wasm', '--prompt': 'hi', '-p': 'hi', '--input-file': questions, '--data': questions };
  let outputs = 0;
  const withValue = (flag: string): string[] => {
    if (booleans.has(flag)) return [flag];
    if (flag === '--output' || flag === '-o') return [flag, path.join(dir, `out-${outputs++}.jsonl`)];
    return [flag, values[flag] ?? (flag === '--tokenizer' || flag === '--checkpoint' ? path.join(dir, 'nope') : '1')];
  };
  // generate takes exactly one of its three modes, and --output only with --input-file: those spellings
  // run one by one, all the others together behind --prompt.
  const modeArgs: Record<string, string[]> = {
    '--prompt': [], '-p': [], '--input-file': [], '--interactive': [], '-i': [],
    '--output': ['--input-file', questions], '-o': ['--input-file', questions],
  };
  const generateFlags = documentedFlags('generate', manualSection('generate'));
  const evaluateFlags = documentedFlags('evaluate', manualSection('evaluate'));
  return {
    generate: [
      ['-p', 'hi', ...generateFlags.filter((f) => !(f in modeArgs)).flatMap(withValue)],
      ...generateFlags.filter((f) => f in modeArgs).map((f) => [...modeArgs[f], ...withValue(f)]),
    ],
    evaluate: [['--data', questions, ...evaluateFlags.flatMap(withValue)]],
  };
}

function assertParsed(command: string, args: string[], r: CliResult, missing: string): void {
  const what = `gptmed-${command} ${args.join(' ')}: ${r.stderr}`;
  assert.doesNotMatch(r.stderr, /Unknown argument|Not enough arguments|Invalid values|see gptmed/, what);
  // The flags parsed and the command ran as far as the (missing) checkpoint.
  assert.equal(r.status, 1, what);
  assert.match(r.stderr, new RegExp(`^gptmed(-${command}| ${command})?: error: ${missing}: no such checkpoint`, 'm'), what);
}

test('MANUAL.md: every flag spelling documented for generate and evaluate is accepted, --no-repeat-ngram N included', () => {
  const dir = tempDir();
  const missing = path.join(dir, 'no-such-run');
  const runs = documentedRuns(dir);
  const documented = runs.generate.flat().concat(runs.evaluate.flat());
  for (const flag of ['--no-repeat-ngram', '--max-length', '-o', '-p', '-i', '--limit', '--json']) assert.ok(documented.includes(flag), `found ${flag} in MANUAL.md`);
  for (const [command, list] of Object.entries(runs)) {
    for (const args of list) {
      const full = [...args, '--checkpoint', missing];
      assertParsed(command, full, runCli(command, full), missing);
    }
  }
  const umbrella = ['generate', '-p', 'hi', '--no-repeat-ngram', '2', '--checkpoint', missing];
  assertParsed('generate', umbrella, runCli('gptmed', umbrella), missing);
  // Boolean negation stays on elsewhere: convert's --no-header still parses.
  const convert = runCli('convert', ['--no-header', path.join(dir, 'none.csv'), '-o', path.join(dir, 'x.qa.txt')]);
  assert.equal(convert.status, 1, convert.stderr);
  assert.match(convert.stderr, /none\.csv/);
});

/** A directory this process cannot write in: chmod 555, or, for root (who writes anywhere), /sys; null if neither. */
function unwritableDir(dir: string): string | null {
  const locked = path.join(dir, 'locked');
  fs.mkdirSync(locked);
  fs.chmodSync(locked, 0o555);
  for (const d of [locked, '/sys']) {
    try {
      fs.writeFileSync(path.join(d, 'probe'), '');
      fs.rmSync(path.join(d, 'probe'));
    } catch {
      return d;
    }
  }
  return null;
}

test('an -o that cannot be written is refused before the model is loaded, naming the path the user gave', () => {
  const dir = tempDir();
  const missing = path.join(dir, 'no-such-run');
  const questions = path.join(dir, 'questions.txt');
  fs.writeFileSync(questions, 'What is Python?\n');
  const existing = path.join(dir, 'answers.jsonl');
  fs.writeFileSync(existing, 'keep me\n');
  const outDir = path.join(dir, 'out');
  fs.mkdirSync(outDir);
  const cases: Array<[string, RegExp]> = [
    [outDir, /: is a directory; give --output a file name$/],
    [existing, / already exists; choose another output or pass --force/],
    [path.join(questions, 'answers.jsonl'), /: .*questions\.txt is not a directory; choose another --output$/],
  ];
  const locked = unwritableDir(dir);
  if (locked) cases.push([path.join(locked, 'answers.jsonl'), /: cannot be written \(E[A-Z]+: .* in .*\); choose another --output/]);
  for (const [output, message] of cases) {
    const runs: Array<[string, string[]]> = [
      ['generate', ['--input-file', questions, '-o', output, '--checkpoint', missing, '--device', 'wasm']],
      ['evaluate', ['--data', questions, '-o', output, '--checkpoint', missing, '--device', 'wasm']],
    ];
    for (const [command, args] of runs) {
      const r = runCli(command, args);
      const what = `gptmed-${command} -o ${output}: ${r.stderr}`;
      assert.equal(r.status, 1, what);
      assert.equal(r.stderr.trim().split('\n').length, 1, what);
      assert.ok(r.stderr.startsWith(`gptmed-${command}: error: ${output}`), what);
      assert.match(r.stderr.trim(), message, what);
      assert.doesNotMatch(r.stderr, /\.tmp-/, 'the hidden temporary is never named');
    }
  }
  assert.equal(fs.readFileSync(existing, 'utf8'), 'keep me\n');
  assert.deepEqual(fs.readdirSync(outDir), []);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['answers.jsonl', 'locked', 'out', 'questions.txt'].filter((n) => fs.existsSync(path.join(dir, n))).sort());
});

test('a checkpoint whose step directory lost its manifest: generate and evaluate say so and suggest --checkpoint, not the train-only --resume-from', () => {
  const dir = tempDir();
  const run = path.join(dir, 'run');
  fs.mkdirSync(path.join(run, 'step-000002'), { recursive: true });
  fs.writeFileSync(path.join(run, 'best'), 'step-000002\n');
  const data = path.join(dir, 'held-out.qa.txt');
  fs.writeFileSync(data, 'Q: What is Python?\nA: A language.\n');
  for (const [command, args] of [
    ['generate', ['-p', 'hi']],
    ['evaluate', ['--data', data, '-o', path.join(dir, 'answers.jsonl')]],
  ] as const) {
    for (const checkpoint of [run, path.join(run, 'step-000002')]) {
      const r = runCli(command, [...args, '--checkpoint', checkpoint, '--device', 'wasm']);
      const what = `gptmed-${command} --checkpoint ${checkpoint}: ${r.stderr}`;
      assert.equal(r.status, 1, what);
      assert.match(r.stderr, /(points to step-000002, which has no manifest\.json|step-000002: a step directory without manifest\.json) \(an incomplete or damaged checkpoint\); give another checkpoint with --checkpoint\n$/, what);
      assert.doesNotMatch(r.stderr, /resume-from|missing/, what);
    }
  }
});

test('a question of megabytes (one 50 MB word) is refused before encoding: one line naming file:line, no Aborted()', async () => {
  const dir = tempDir();
  const { runDir } = await trainTinyRun(dir, 1);
  const file = path.join(dir, 'questions.txt');
  fs.writeFileSync(file, `What is Python?\n${'a'.repeat(50_000_000)}\nWhat is Java?\n`);
  const output = path.join(dir, 'answers.jsonl');
  const r = runCli('generate', ['--checkpoint', runDir, '--input-file', file, '-o', output, '--device', 'wasm']);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, `gptmed-generate: error: ${file}:2: this question is 50000000 bytes, more than any model's context could hold (at most 1048576 bytes); shorten it, or check that the file holds one question a line\n`);
  assert.equal(fs.existsSync(output), false);

  // The same limit for a question typed into the prompt loop (a command line cannot carry one this long).
  const typed = runCli('generate', ['--checkpoint', runDir, '--interactive', '--device', 'wasm'], { input: `${'b'.repeat(2 << 20)}\n` });
  assert.equal(typed.status, 1, typed.stderr);
  assert.match(typed.stderr, /^backend: .*\ngptmed-generate: error: the question is 2097152 bytes, more than any model's context could hold \(at most 1048576 bytes\); shorten it\n$/);
});
