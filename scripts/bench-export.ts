/**
 * GGUF export: file sizes (f32, f16), export time, and greedy decoding speed of the exported file in
 * llama.cpp (node-llama-cpp, CPU, one thread) beside gptmed's own (KV cache), for GPTs of the presets'
 * shapes. Random weights (speed and size do not depend on them) and a synthetic vocabulary; the prompt
 * is the same random ids on both sides, and both decode the same number of tokens greedily.
 *   scripts/bench-export [--model-size tiny small] [--vocab-size 8000] [--new-tokens 200] [--prompt-tokens 32] [--device auto|gpu|cpu|wasm]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import seedrandom from 'seedrandom';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { devices, initBackend, type Device } from '../src/backend/index.js';
import { ggufFile } from '../src/export/gguf.js';
import type { ExportDtype, ExportSource } from '../src/export/source.js';
import { decodeTokens } from '../src/generate/index.js';
import type { CheckpointManifest } from '../src/model/checkpoint.js';
import { GPT, loadPreset, modelSizes, type ModelConfig, type ModelSize } from '../src/model/index.js';
import { PieceType, type ModelPiece } from '../src/tokenizer/model-proto.js';

const args = yargs(hideBin(process.argv))
  .option('model-size', { choices: modelSizes, type: 'array', default: ['tiny', 'small'] as ModelSize[] })
  .option('vocab-size', { type: 'number', default: 8000 })
  .option('new-tokens', { type: 'number', default: 200 })
  .option('prompt-tokens', { type: 'number', default: 32 })
  .option('device', { choices: devices, default: 'auto' as Device, describe: "gptmed's backend" })
  .strict()
  .parseSync();

const backend = await initBackend(args.device);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gptmed-bench-export-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * <pad> <unk> <s> </s> "\n", the printable ASCII characters, then made-up pieces: a vocabulary llama.cpp
 * loads (node-llama-cpp tokenizes a few probes on load; llama.cpp aborts on a character it cannot spell).
 */
function syntheticPieces(n: number): ModelPiece[] {
  const pieces: ModelPiece[] = [
    { piece: '<pad>', score: 0, type: PieceType.CONTROL },
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
    { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL },
    { piece: '\n', score: 0, type: PieceType.USER_DEFINED },
  ];
  for (const ch of '▁!"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~') {
    pieces.push({ piece: ch, score: -pieces.length });
  }
  for (let i = pieces.length; i < n; i++) pieces.push({ piece: `▁w${i}`, score: -i });
  return pieces;
}

function exportSource(config: ModelConfig, model: GPT): ExportSource {
  const weights = new Map(model.parameters().map((p) => [p.name, p.variable.dataSync() as Float32Array]));
  const manifest = { step: 0, modelConfig: config } as CheckpointManifest;
  const tokenizer = { pieces: syntheticPieces(config.vocabSize), trainerSpec: { padId: 0, unkId: 1, bosId: 2, eosId: 3 }, normalizerSpec: { addDummyPrefix: false } };
  return { stepDir: path.join(dir, 'bench', 'step-000000'), manifest, weights, tokenizerPath: '(synthetic)', tokenizerBytes: new Uint8Array(), tokenizer };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Seconds to build the file in memory (median of 3), and its bytes. */
function timeExport(src: ExportSource, dtype: ExportDtype): { seconds: number; file: string; bytes: number } {
  const times: number[] = [];
  let bytes: Uint8Array = new Uint8Array();
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    bytes = ggufFile(src, dtype);
    times.push((performance.now() - t0) / 1000);
  }
  const file = path.join(dir, `model-${dtype}.gguf`);
  fs.writeFileSync(file, bytes);
  return { seconds: median(times), file, bytes: bytes.length };
}

/** llama.cpp's greedy tokens/s on `file`: the prompt, then newTokens tokens (fewer if it emits </s>). */
async function llamaTokensPerSecond(file: string, prompt: number[], config: ModelConfig): Promise<number> {
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({ threads: 1, contextSize: config.maxSeqLen, sequences: 1 });
  const sequence = context.getSequence();
  const run = async (newTokens: number): Promise<number> => {
    await sequence.clearHistory();
    const t0 = performance.now();
    let n = 0;
    for await (const token of sequence.evaluate(prompt as Token[], { temperature: 0 })) {
      void token;
      if (++n >= newTokens) break;
    }
    return n / ((performance.now() - t0) / 1000);
  };
  await run(8);
  const rate = await run(args.newTokens);
  await context.dispose();
  await model.dispose();
  return rate;
}

async function gptmedTokensPerSecond(model: GPT, prompt: number[]): Promise<number> {
  const rng = seedrandom('bench-export');
  const greedy = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, noRepeatNgram: 0 };
  const run = async (newTokens: number): Promise<number> => {
    const t0 = performance.now();
    const r = await decodeTokens(model, prompt, { ...greedy, maxNewTokens: newTokens, useCache: true }, rng, { eos: -1, banned: [] });
    return r.generatedTokens / ((performance.now() - t0) / 1000);
  };
  await run(8);
  return run(args.newTokens);
}

const mb = (n: number): string => (n / 1e6).toFixed(2);
const rows: string[][] = [];
for (const size of args.modelSize as ModelSize[]) {
  const config: ModelConfig = { ...loadPreset(size), vocabSize: args.vocabSize, dropout: 0 };
  const model = new GPT(config, { seed: 1 });
  const src = exportSource(config, model);
  const f32 = timeExport(src, 'f32');
  const f16 = timeExport(src, 'f16');
  const rng = seedrandom('bench-export-prompt');
  const prompt = Array.from({ length: args.promptTokens }, () => 5 + Math.floor(rng() * (args.vocabSize - 5)));
  const llamaF32 = await llamaTokensPerSecond(f32.file, prompt, config);
  const llamaF16 = await llamaTokensPerSecond(f16.file, prompt, config);
  const gptmed = await gptmedTokensPerSecond(model, prompt);
  model.dispose();
  rows.push([
    `${size} (${(model.countParameters() / 1e6).toFixed(2)}M)`, mb(f32.bytes), mb(f16.bytes), f32.seconds.toFixed(2), f16.seconds.toFixed(2),
    llamaF32.toFixed(0), llamaF16.toFixed(0), gptmed.toFixed(0),
  ]);
}

const header = ['model (params)', 'f32 MB', 'f16 MB', 'export f32 s', 'export f16 s', 'llama.cpp f32 tok/s', 'llama.cpp f16 tok/s', `gptmed tok/s`];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(`bench-export: vocab ${args.vocabSize}, prompt ${args.promptTokens} tokens, ${args.newTokens} new tokens, greedy; llama.cpp: node-llama-cpp CPU, threads 1; gptmed: ${backend.label}, KV cache`);
console.log(line(header));
for (const r of rows) console.log(line(r));
await llama.dispose();
