/**
 * gptmed-serve under load: a tiny model (test/generate/tiny-model.ts, trained here in a few seconds) served by
 * `node bin/gptmed-serve.js` in a child process on loopback, and --clients clients each streaming chat
 * completions back to back for --seconds. Prints requests/s, generated tokens/s in all, p50/p99 time to
 * the first token and per request, errors (should be 0), and the server's RSS at the start, after 100 and
 * after 1,000 requests, and at the end (it should not grow beyond noise).
 *   scripts/bench-serve [--clients 8] [--seconds 20] [--max-concurrent 2] [--max-tokens 32]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { trainTinyRun } from '../test/generate/tiny-model.js';

const args = yargs(hideBin(process.argv))
  .option('clients', { type: 'number', default: 8 })
  .option('seconds', { type: 'number', default: 20 })
  .option('max-concurrent', { type: 'number', default: 2 })
  .option('max-tokens', { type: 'number', default: 32 })
  .strict()
  .parseSync();

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gptmed-bench-serve-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const tiny = await trainTinyRun(dir, 60);
const runsDir = path.join(dir, 'runs');
fs.mkdirSync(runsDir);
fs.cpSync(tiny.runDir, path.join(runsDir, 'quiz'), { recursive: true });

const server = spawn(
  process.execPath,
  [path.join(root, 'bin', 'gptmed-serve.js'), '--runs-dir', runsDir, '--port', '0', '--quiet', '--max-concurrent', String(args.maxConcurrent)],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
const url = await new Promise<string>((resolve, reject) => {
  let err = '';
  server.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    const m = /listening on (http:\/\/\S+)/.exec(err);
    if (m) resolve(m[1]);
  });
  server.on('exit', (code) => reject(new Error(`gptmed-serve exited (${code}): ${err}`)));
});

/** The server's resident set in MB (Linux /proc; else ps). */
function rssMb(): number {
  try {
    const status = fs.readFileSync(`/proc/${server.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  } catch {
    return NaN;
  }
}

interface Sample {
  ttft: number;
  total: number;
  tokens: number;
}

/** One streamed chat completion: the time to its first content delta, the whole time, its completion tokens. */
async function streamOnce(question: string, seed: number): Promise<Sample> {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'quiz', messages: [{ role: 'user', content: question }], stream: true, stream_options: { include_usage: true }, seed, max_tokens: args.maxTokens }),
  });
  if (r.status !== 200 || !r.body) throw new Error(`status ${r.status}: ${await r.text()}`);
  let ttft = NaN;
  let tokens = 0;
  let done = false;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const bytes of r.body) {
    buffer += decoder.decode(bytes as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.replace(/^data: /, '');
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data) as { error?: unknown; usage?: { completion_tokens: number }; choices: Array<{ delta: { content?: string } }> };
      if (chunk.error) throw new Error(JSON.stringify(chunk.error));
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      if (Number.isNaN(ttft) && chunk.choices[0]?.delta.content) ttft = performance.now() - t0;
    }
  }
  if (!done) throw new Error('the stream ended without [DONE]');
  const total = performance.now() - t0;
  return { ttft: Number.isNaN(ttft) ? total : ttft, total, tokens };
}

// Warm up: the model loads on its first request.
await streamOnce(tiny.pairs[0].question, 0);
const rss: Array<[string, number]> = [['start (model loaded)', rssMb()]];
const samples: Sample[] = [];
const errors: string[] = [];
let started = 0;
const until = performance.now() + args.seconds * 1000;
const t0 = performance.now();

async function client(): Promise<void> {
  while (performance.now() < until) {
    const n = started++;
    try {
      samples.push(await streamOnce(tiny.pairs[n % tiny.pairs.length].question, n));
    } catch (err) {
      errors.push((err as Error).message);
    }
    const finished = samples.length + errors.length;
    if (finished === 100 || finished === 1000) rss.push([`after ${finished} requests`, rssMb()]);
  }
}
await Promise.all(Array.from({ length: args.clients }, client));
const seconds = (performance.now() - t0) / 1000;
rss.push([`end (${samples.length + errors.length} requests)`, rssMb()]);
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const tokens = samples.reduce((sum, s) => sum + s.tokens, 0);
console.log(`bench-serve: ${args.clients} clients streaming chat completions for ${seconds.toFixed(1)} s, --max-concurrent ${args.maxConcurrent}, max_tokens ${args.maxTokens}, tiny quiz model (${os.cpus().length} CPUs)`);
console.log(`  requests        ${samples.length} ok, ${errors.length} errors (${(samples.length / seconds).toFixed(1)} requests/s)`);
console.log(`  tokens          ${tokens} generated (${(tokens / seconds).toFixed(1)} tokens/s in all, ${(tokens / Math.max(1, samples.length)).toFixed(1)} a request)`);
console.log(`  first token     p50 ${pct(samples.map((s) => s.ttft), 50).toFixed(1)} ms, p99 ${pct(samples.map((s) => s.ttft), 99).toFixed(1)} ms`);
console.log(`  whole request   p50 ${pct(samples.map((s) => s.total), 50).toFixed(1)} ms, p99 ${pct(samples.map((s) => s.total), 99).toFixed(1)} ms`);
for (const [when, mb] of rss) console.log(`  server RSS      ${mb.toFixed(1)} MB ${when}`);
if (errors.length > 0) {
  console.log(`  first error: ${errors[0]}`);
  process.exitCode = 1;
}
