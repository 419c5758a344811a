/** Paths and helpers shared by the tests. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
/** Real text from the team's shared data, copied into the repository (see its README.md). */
export const referenceDir = path.join(fixturesDir, 'reference');

/** A fresh temporary directory, removed when the process exits. */
export function tempDir(prefix = 'gptmed-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a built binary, `gptmed-<name>`, as a user would. */
export function runCli(name: string, args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const bin = path.join(repoRoot, 'bin', name === 'gptmed' ? 'gptmed.js' : `gptmed-${name}.js`);
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: opts.cwd ?? repoRoot,
    input: opts.input,
    encoding: 'utf8',
    env: { ...process.env, CI: '1', ...opts.env },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
