/**
 * Generation speed with and without the KV cache, measured in the same run:
 * a GPT of a preset's shape (random weights: speed does not depend on them)
 * decodes the same number of tokens greedily both ways, and the ratio is printed.
 *   scripts/bench-generate [--model-size tiny|small|medium] [--new-tokens 200] [--prompt-tokens 32] [--device auto|gpu|webgpu|cpu|wasm]
 */
import seedrandom from 'seedrandom';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { devices, initBackend, type Device } from '../src/backend/index.js';
import { decodeTokens } from '../src/generate/index.js';
import { GPT, loadPreset, modelSizes, type ModelSize } from '../src/model/index.js';

const args = yargs(hideBin(process.argv))
  .option('model-size', { choices: modelSizes, default: 'tiny' as ModelSize })
  .option('vocab-size', { type: 'number', default: 8000 })
  .option('new-tokens', { type: 'number', default: 200 })
  .option('prompt-tokens', { type: 'number', default: 32 })
  .option('device', { choices: devices, default: 'auto' as Device })
  .strict()
  .parseSync();

const backend = await initBackend(args.device);
const model = new GPT({ ...loadPreset(args.modelSize), vocabSize: args.vocabSize, dropout: 0 }, { seed: 1 });
const rng = seedrandom('bench-generate');
const prompt = Array.from({ length: args.promptTokens }, () => Math.floor(rng() * args.vocabSize));
const greedy = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, noRepeatNgram: 0 };
// No end token: every run produces exactly the number of tokens asked for.
const special = { eos: -1, banned: [] };

async function tokensPerSecond(useCache: boolean, newTokens: number): Promise<number> {
  const t0 = performance.now();
  const r = await decodeTokens(model, prompt, { ...greedy, maxNewTokens: newTokens, useCache }, rng, special);
  return r.generatedTokens / ((performance.now() - t0) / 1000);
}

// Warm up both paths (kernel compilation, first allocations).
await tokensPerSecond(true, 8);
await tokensPerSecond(false, 8);
const withCache = await tokensPerSecond(true, args.newTokens);
const withoutCache = await tokensPerSecond(false, args.newTokens);
console.log(`bench-generate: ${args.modelSize} (${model.countParameters().toLocaleString('en')} parameters, vocab ${args.vocabSize}), ${backend.label}, prompt ${args.promptTokens} tokens, ${args.newTokens} new tokens, greedy`);
console.log(`  with the KV cache     ${withCache.toFixed(1)} tokens/s`);
console.log(`  without the KV cache  ${withoutCache.toFixed(1)} tokens/s`);
console.log(`  ratio (cache / no cache): ${(withCache / withoutCache).toFixed(2)}x`);
model.dispose();
