/** gptmed-serve as a user starts it: bad settings refused in one line, a real start on loopback, SIGTERM closes it with exit 0. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli, tempDir } from '../helpers.js';

function refused(args: string[], status: number, line: RegExp): void {
  const r = runCli('serve', args);
  assert.equal(r.status, status, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^gptmed-serve: error: /);
  assert.match(lines[0], line);
}

test('settings it cannot serve with are refused in one line before it binds anything', () => {
  refused(['--host', '0.0.0.0'], 1, /--host 0\.0\.0\.0 makes the server reachable from other machines; give --api-key/);
  refused(['--max-concurrent', '0'], 2, /maxConcurrent 0: must be a whole number from 1 to 64/);
  refused(['--port', '70000'], 2, /port 70000: must be a whole number from 0 to 65535/);
  refused(['--max-upload-mb', '0'], 2, /maxUploadMb 0: must be above 0/);
  refused(['--port', 'abc'], 2, /port/);
});

test('it listens on 127.0.0.1, answers /health, and SIGTERM closes it with exit 0', async () => {
  const runs = tempDir();
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'gptmed-serve.js'), '--runs-dir', runs, '--port', '0', '--quiet'], { cwd: repoRoot });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!/listening on http:\/\/127\.0\.0\.1:\d+/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
  assert.ok(url, `no listening line: ${stderr}`);
  assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: 'ok' });
  assert.deepEqual(await (await fetch(`${url}/v1/models`)).json(), { object: 'list', data: [] });
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /SIGTERM: closing/);
});
