#!/usr/bin/env node
// npm's install hook: builds the optional native kernels (native/, see src/backend/native.ts) with
// the node-gyp that ships inside npm, against the node headers installed beside node itself.
// It never fails the install: where there is no compiler or no local headers (node-gyp would
// download them), it prints one line and gptmed trains on the stock wasm kernels instead.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'native');
const skip = (why) => {
  console.log(`gptmed: native CPU kernels not built (${why}); training will use the slower wasm kernels`);
  process.exit(0);
};

// node's own prefix holds include/node/node_api.h for distribution packages and official tarballs.
const nodePrefix = path.resolve(path.dirname(process.execPath), '..');
const nodedir = [process.env.npm_config_nodedir, nodePrefix].find(
  (dir) => dir && fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')),
);
if (!nodedir) skip(`no node headers under ${nodePrefix}/include/node`);

const candidates = [
  process.env.npm_config_node_gyp,
  process.env.npm_execpath && path.resolve(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((file) => file && fs.existsSync(file));
if (candidates.length === 0) skip('node-gyp not found; run the install through npm');

const result = spawnSync(process.execPath, [candidates[0], 'rebuild', `--nodedir=${nodedir}`], {
  cwd: nativeDir,
  encoding: 'utf8',
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (result.status !== 0) {
  const output = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
  const firstError = output.split('\n').find((line) => /error|not found/i.test(line))?.trim();
  skip(firstError ? `build failed: ${firstError.slice(0, 160)}` : 'build failed');
}
console.log('gptmed: native CPU kernels built');
