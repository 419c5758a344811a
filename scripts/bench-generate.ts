/**
 * Generation speed, measured in one run: GPTs of the presets' shapes (random weights: speed does not
 * depend on them) decode greedily through the library's token loop (decodeTokenBatch), a prompt of
 * --prompt-tokens then --new-tokens one at a time with the KV cache, as PyTorch's reference does
 * (../shared/bench/torch_generate_reference.py: prefill, then one forward and an argmax per token).
 * Prefill is the time to the first token (median of 5 prompt-only runs per measurement); decoding, the
 * time from there to the last, over --new-tokens.
 * Each repeat runs the engines in turn, alternating their order (the machine is shared and noisy), each
 * measurement the faster of two runs (as the reference reports the faster of 1 and 2 threads):
 *   native   the forward decoding uses where it can (src/model/native-decoder.ts)
 *   tfjs     GPT.forward with its KVCache (what other backends use, and what decoding used before)
 *   torch    with --vs-torch (run with /usr/bin/python3; needs python3-torch and libopenblas0-pthread)
 * Then batched decoding: --batches sequences continuing one prompt, decoded together (decodeTokenBatch,
 * as --num-samples), and as many separate requests at once (as a server's), in tokens/s over all of
 * them. With --vs-torch the last line is `generate vs PyTorch: tiny <ratio>x small <ratio>x` (median
 * over repeats of native / torch decode tokens/s).
 *   scripts/bench-generate [--sizes tiny small] [--new-tokens 200] [--prompt-tokens 32] [--repeats 3]
 *                          [--batches 1 4 8] [--device auto] [--vs-torch] [--uncached]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { devices, initBackend, type Device } from '../src/backend/index.js';
import { decodeTokenBatch, type DecodeSettings } from '../src/generate/decode.js';
import { GPT, loadPreset, modelSizes, type ModelSize } from '../src/model/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const args = yargs(hideBin(process.argv))
  .option('sizes', { type: 'array', alias: 'model-size', choices: modelSizes, default: ['tiny', 'small'] as ModelSize[] })
  .option('vocab-size', { type: 'number', default: 8000 })
  .option('new-tokens', { type: 'number', default: 200 })
  .option('prompt-tokens', { type: 'number', default: 32 })
  .option('repeats', { type: 'number', default: 3, describe: 'measurements per engine and size' })
  .option('batches', { type: 'array', default: [1, 4, 8], describe: 'sequences decoded together' })
  .option('device', { choices: devices, default: 'auto' as Device })
  .option('vs-torch', { type: 'boolean', default: false, describe: 'also run torch_generate_reference.py and print ratios' })
  .option('torch-reference', { type: 'string', default: path.resolve(repoRoot, '..', 'shared', 'bench', 'torch_generate_reference.py') })
  .option('uncached', { type: 'boolean', default: false, describe: 'also decode without the KV cache (slow)' })
  .strict()
  .parseSync();

interface Timing {
  prefillS: number;
  /** Decoded tokens per second after the first, over every sequence. */
  tokensPerS: number;
}

const greedy = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, noRepeatNgram: 0 };
// No end token: every sequence produces exactly the number of tokens asked for.
const special = { eos: -1, banned: [] };

/** Decode `sequences` sequences from `prompt`: the first token from the prompt's logits, then newTokens more. */
async function timeDecoding(model: GPT, prompt: number[], settings: Partial<DecodeSettings>, newTokens: number, sequences = 1): Promise<Timing> {
  const rngs = Array.from({ length: sequences }, (_, i) => seedrandom(`bench-generate/${i}`));
  let firstToken = 0;
  const onFirst = (): boolean => {
    firstToken ||= performance.now();
    return false;
  };
  const t0 = performance.now();
  await decodeTokenBatch(model, prompt, { ...greedy, maxNewTokens: newTokens + 1, ...settings }, rngs, special, [onFirst]);
  const end = performance.now();
  return { prefillS: (firstToken - t0) / 1000, tokensPerS: (sequences * newTokens) / ((end - firstToken) / 1000) };
}

function runTorch(size: ModelSize): Timing | string {
  const r = spawnSync('/usr/bin/python3', [args.torchReference, '--size', size, '--vocab', String(args.vocabSize), '--prompt', String(args.promptTokens),
    '--new', String(args.newTokens), '--repeats', '1'], { encoding: 'utf8' });
  if (r.status !== 0) return `failed (needs python3-torch and libopenblas0-pthread): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { prefill_s: number; tokens_per_s: number; threads: number };
  return { prefillS: m.prefill_s, tokensPerS: m.tokens_per_s };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const range = (xs: number[], digits: number): string => {
  const lo = Math.min(...xs), hi = Math.max(...xs);
  return lo === hi ? lo.toFixed(digits) : `${lo.toFixed(digits)}-${hi.toFixed(digits)}`;
};

/** One size: the engines in alternating order per repeat, then batched decoding; native / torch ratios. */
async function benchSize(size: ModelSize): Promise<number | null> {
  const model = new GPT({ ...loadPreset(size), vocabSize: args.vocabSize, dropout: 0 }, { seed: 1 });
  const rng = seedrandom('bench-generate');
  const prompt = Array.from({ length: args.promptTokens }, () => Math.floor(rng() * args.vocabSize));
  // Each measurement is the faster of two runs, as the PyTorch reference reports the faster of its two thread settings.
  // Prefill, a millisecond or two, is the median of 5 prompt-only runs: one preemption on a busy machine doubles a single one.
  const bestOfTwo = async (settings: Partial<DecodeSettings>): Promise<Timing> => {
    const [a, b] = [await timeDecoding(model, prompt, settings, args.newTokens), await timeDecoding(model, prompt, settings, args.newTokens)];
    const prefills: number[] = [];
    for (let i = 0; i < 5; i++) prefills.push((await timeDecoding(model, prompt, settings, 0)).prefillS);
    return { prefillS: median(prefills), tokensPerS: Math.max(a.tokensPerS, b.tokensPerS) };
  };
  const engines: Record<string, () => Promise<Timing | string>> = {
    native: () => bestOfTwo({}),
    tfjs: () => bestOfTwo({ forward: 'tfjs' }),
  };
  if (args.vsTorch) engines.torch = async () => runTorch(size);
  // Warm up (kernel compilation, the JIT, the weights' first read) with a whole run each.
  await timeDecoding(model, prompt, {}, args.newTokens);
  await timeDecoding(model, prompt, { forward: 'tfjs' }, args.newTokens);
  const results: Record<string, Timing[]> = Object.fromEntries(Object.keys(engines).map((e) => [e, []]));
  const names = Object.keys(engines);
  for (let r = 0; r < args.repeats; r++) {
    for (const name of r % 2 === 0 ? names : [...names].reverse()) {
      const t = await engines[name]!();
      if (typeof t === 'string') console.log(`  ${name}: ${t}`);
      else results[name]!.push(t);
    }
  }
  console.log(`bench-generate: ${size} (${model.countParameters().toLocaleString('en')} parameters, vocab ${args.vocabSize}), prompt ${args.promptTokens} tokens, ${args.newTokens} new tokens, greedy, ${args.repeats} repeats`);
  for (const [name, ts] of Object.entries(results)) {
    if (ts.length === 0) continue;
    console.log(`  ${name.padEnd(7)} decode ${range(ts.map((t) => t.tokensPerS), 0).padStart(9)} tokens/s   prefill ${range(ts.map((t) => t.prefillS * 1000), 1)} ms`);
  }
  const pairRatio = (a: string, b: string, pick: (t: Timing) => number): number[] =>
    results[a]!.flatMap((t, i) => (results[b]![i] ? [pick(t) / pick(results[b]![i]!)] : []));
  console.log(`  native / tfjs: decode ${range(pairRatio('native', 'tfjs', (t) => t.tokensPerS), 2)}x`);
  let vsTorch: number | null = null;
  if (args.vsTorch && results.torch!.length > 0) {
    const ratios = pairRatio('native', 'torch', (t) => t.tokensPerS);
    vsTorch = median(ratios);
    const medianPrefill = (name: string): number => median(results[name]!.map((t) => t.prefillS));
    console.log(`  native / torch: decode ${range(ratios, 2)}x; prefill time, median of each: ${(medianPrefill('native') / medianPrefill('torch')).toFixed(2)}x (below 1: faster)`);
  }
  await benchBatches(model, prompt);
  if (args.uncached) console.log(`  without the KV cache: ${(await timeDecoding(model, prompt, { useCache: false, forward: 'tfjs' }, args.newTokens)).tokensPerS.toFixed(1)} tokens/s`);
  model.dispose();
  return vsTorch;
}

/** Decode `n` separate requests at once (as a server's concurrent requests): tokens/s over all of them. */
async function concurrentTokensPerSecond(model: GPT, prompt: number[], n: number): Promise<number> {
  const t0 = performance.now();
  const runs = Array.from({ length: n }, (_, i) => decodeTokenBatch(model, prompt, { ...greedy, maxNewTokens: args.newTokens }, [seedrandom(`c${i}`)], special));
  const tokens = (await Promise.all(runs)).reduce((sum, [r]) => sum + r!.generatedTokens, 0);
  return tokens / ((performance.now() - t0) / 1000);
}

/**
 * Tokens/s over all sequences when --batches of them continue one prompt together (--num-samples), and
 * when as many separate requests run at once (a server's; their prompts included).
 */
async function benchBatches(model: GPT, prompt: number[]): Promise<void> {
  const samples: string[] = [];
  const requests: string[] = [];
  const runs = Math.max(1, args.repeats - 1);
  for (const n of args.batches.map(Number)) {
    let together = 0;
    let concurrent = 0;
    for (let r = 0; r < runs; r++) {
      together = Math.max(together, (await timeDecoding(model, prompt, {}, args.newTokens, n)).tokensPerS);
      concurrent = Math.max(concurrent, await concurrentTokensPerSecond(model, prompt, n));
    }
    samples.push(`${n}: ${together.toFixed(0)}`);
    requests.push(`${n}: ${concurrent.toFixed(0)}`);
  }
  console.log(`  batched, tokens/s over all sequences (best of ${runs}): samples of one prompt ${samples.join(', ')}; concurrent requests ${requests.join(', ')}`);
}

if (args.vsTorch && !fs.existsSync(args.torchReference)) {
  console.error(`bench-generate: --vs-torch: ${args.torchReference} not found; give --torch-reference PATH`);
  process.exit(2);
}
const backend = await initBackend(args.device);
console.log(backend.line);
const ratios: string[] = [];
for (const size of args.sizes as ModelSize[]) {
  const ratio = await benchSize(size);
  ratios.push(`${size} ${ratio === null ? 'n/a' : `${ratio.toFixed(2)}x`}`);
}
if (args.vsTorch) console.log(`generate vs PyTorch: ${ratios.join(' ')}`);
