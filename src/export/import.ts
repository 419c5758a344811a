/**
 * gptmed-import: a Hugging Face GPT-2 directory (what gptmed-export --format hf writes, or what a PyTorch
 * run wrote back in that layout) in as a gptmed run directory:
 *   <out>/tokenizer.model           the directory's SentencePiece model, byte for byte
 *   <out>/step-NNNNNN/              weights (the embedding fold undone), zero AdamW moments, manifest
 *   <out>/latest, <out>/best        both name that step directory
 * The step is config.json's gptmed.step (0 without it). The optimizer state is a fresh AdamW's and the
 * training state says trainRows 0 (not yet trained on any shards here), so gptmed-train --resume-from
 * continues training it on the shards it is given.
 *
 * Only models gptmed computes exactly are taken; anything else is refused in one line naming the file
 * and what is not supported (see `refuse` below and MANUAL.md "gptmed-import").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDirAtomic } from '../common/atomic.js';
import { UserError } from '../common/errors.js';
import { sha256 } from '../common/hash.js';
import { checkOutput } from '../common/output.js';
import type { NamedArray, TrainState } from '../model/checkpoint.js';
import { validateModelConfig, type ModelConfig } from '../model/config.js';
import { parameterSpecs } from '../model/gpt.js';
import { runTokenizerFile, runTokenizerRef, saveCheckpointArrays, stepDirName, writePointer } from '../model/run-dir.js';
import { parseModelFile, specialIdsOf } from '../tokenizer/tokenizer.js';
import { fromGpt2, toGpt2 } from './gpt2-layout.js';
import { gptmedBlockFormat, hfFiles } from './hf.js';
import { readableDtypes, readSafetensors, toFloat32, type SafetensorsEntry } from './safetensors.js';

export interface ImportOptions {
  /** The Hugging Face directory: config.json, model.safetensors, tokenizer.model. */
  from: string;
  /** The run directory to write. */
  output: string;
  /** Replace an existing output. */
  force?: boolean;
  /** Informational lines (the CLI prints them on stderr). */
  log?: (line: string) => void;
}

export interface ImportResult {
  runDir: string;
  stepDir: string;
  step: number;
  modelConfig: ModelConfig;
  parameterCount: number;
  /** The dtypes of the tensors read, e.g. ["F16"]. */
  dtypes: string[];
}

/** What the imported checkpoint takes from config.json's gptmed object (hf.ts), with the defaults where it is absent. */
interface Restored {
  step: number;
  seqLen: number;
  tokenizerSha256: string | null;
  bestValLoss: number | null;
  bestStep: number | null;
}

type Json = Record<string, unknown>;

const GELU_NOTE = 'gptmed computes the exact (erf) GELU, "gelu" ("gelu_new" and "gelu_pytorch_tanh" are the tanh approximation)';

function readJson(file: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message.split('\n')[0]})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`${file}: not a JSON object`);
  return value as Json;
}

/** The model's shape from GPT-2's config fields, after refusing what gptmed does not compute (transformers' defaults where a field is absent). */
function modelConfigOf(cfg: Json, file: string): ModelConfig {
  const refuse = (what: string): never => {
    throw new UserError(`${file}: ${what}`);
  };
  if (cfg.model_type !== 'gpt2') refuse(`model_type ${JSON.stringify(cfg.model_type ?? null)} is not supported; gptmed imports GPT-2 models (model_type "gpt2")`);
  if (cfg.architectures !== undefined && !(Array.isArray(cfg.architectures) && cfg.architectures.includes('GPT2LMHeadModel'))) {
    refuse(`architectures ${JSON.stringify(cfg.architectures)} is not supported; gptmed imports GPT2LMHeadModel`);
  }
  if (cfg.activation_function === undefined) refuse(`activation_function is not given, so transformers uses "gelu_new", which is not supported; ${GELU_NOTE}`);
  if (cfg.activation_function !== 'gelu') refuse(`activation_function ${JSON.stringify(cfg.activation_function)} is not supported; ${GELU_NOTE}`);
  const eps = cfg.layer_norm_epsilon ?? 1e-5;
  if (eps !== 1e-5) refuse(`layer_norm_epsilon ${JSON.stringify(eps)} is not supported; gptmed's LayerNorm uses 1e-5`);
  if (cfg.scale_attn_weights === false) refuse('scale_attn_weights false is not supported; gptmed scales attention scores by 1/sqrt(head size)');
  if (cfg.scale_attn_by_inverse_layer_idx === true) refuse('scale_attn_by_inverse_layer_idx true is not supported; gptmed scales attention scores by 1/sqrt(head size) only');
  // reorder_and_upcast_attn computes the same attention in float32 (a training-numerics option): nothing to refuse.
  if (cfg.add_cross_attention === true) refuse('add_cross_attention true is not supported; gptmed is a decoder without cross-attention');
  const int = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) refuse(`${key} must be a positive integer (got ${JSON.stringify(value ?? null)})`);
    return value as number;
  };
  const dModel = int('n_embd', cfg.n_embd);
  const nInner = cfg.n_inner ?? null; // null: 4 * n_embd, as GPT-2
  const dropout = cfg.resid_pdrop ?? 0.1;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) refuse(`resid_pdrop must be in [0, 1) (got ${JSON.stringify(dropout)})`);
  const config: ModelConfig = {
    vocabSize: int('vocab_size', cfg.vocab_size),
    dModel,
    nLayers: int('n_layer', cfg.n_layer),
    nHeads: int('n_head', cfg.n_head),
    dFf: nInner === null ? 4 * dModel : int('n_inner', nInner),
    maxSeqLen: int('n_positions', cfg.n_positions ?? cfg.n_ctx),
    dropout: dropout as number,
  };
  validateModelConfig(config, file);
  return config;
}

/** config.json's gptmed object, checked; defaults where it is absent. */
function restoredOf(cfg: Json, file: string, config: ModelConfig): Restored {
  const none: Restored = { step: 0, seqLen: config.maxSeqLen, tokenizerSha256: null, bestValLoss: null, bestStep: null };
  const g = cfg.gptmed as Json | undefined;
  if (g === undefined || g === null) return none;
  const bad = (key: string, what: string): never => {
    throw new UserError(`${file}: gptmed.${key} must be ${what} (got ${JSON.stringify(g[key] ?? null)})`);
  };
  if (typeof g !== 'object' || g.format !== gptmedBlockFormat) throw new UserError(`${file}: "gptmed" is not gptmed's ("format": "${gptmedBlockFormat}"); remove it or fix it`);
  const count = (key: string, min: number, fallback: number): number => {
    const v = g[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) bad(key, `an integer >= ${min}`);
    return v as number;
  };
  const lossOrNull = (key: string): number | null => {
    const v = g[key] ?? null;
    if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) bad(key, 'a number or null');
    return v as number | null;
  };
  const step = count('step', 0, 0);
  const seqLen = count('seqLen', 2, config.maxSeqLen);
  if (seqLen - 1 > config.maxSeqLen) bad('seqLen', `at most n_positions + 1 (${config.maxSeqLen + 1})`);
  const sha = g.tokenizerSha256 ?? null;
  if (sha !== null && (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha))) bad('tokenizerSha256', 'a sha256 in hex');
  const bestStep = g.bestStep ?? null;
  return { step, seqLen, tokenizerSha256: sha as string | null, bestValLoss: lossOrNull('bestValLoss'), bestStep: bestStep === step ? step : null };
}

/** Why a file the import needs is missing, in one line (with what the directory has instead, where that explains it). */
function missing(dir: string, file: string): UserError {
  const has = (name: string): boolean => fs.existsSync(path.join(dir, name));
  const where = path.join(dir, file);
  if (file === hfFiles.tokenizer) {
    const instead = has('tokenizer.json') ? ' (tokenizer.json, a Hugging Face tokenizer, is not one)' : has('vocab.json') ? ' (vocab.json/merges.txt, a byte-level BPE tokenizer, is not one)' : '';
    return new UserError(`${where}: missing; gptmed needs the model's SentencePiece tokenizer.model${instead}`);
  }
  if (file === hfFiles.weights) {
    const instead = has('model.safetensors.index.json')
      ? '; weights sharded over several files are not supported, save them as one model.safetensors'
      : has('pytorch_model.bin')
        ? '; pytorch_model.bin (PyTorch pickle) is not read, save with save_pretrained(..., safe_serialization=True)'
        : '';
    return new UserError(`${where}: missing; gptmed needs the weights as one model.safetensors${instead}`);
  }
  return new UserError(`${where}: missing; gptmed-import needs a Hugging Face GPT-2 directory (config.json, model.safetensors, tokenizer.model)`);
}

/** GPT-2 buffers some files carry (the causal mask): not weights. */
const maskBuffer = /^transformer\.h\.\d+\.attn\.(masked_)?bias$/;

/** The GPT-2 tensors of model.safetensors as float32, by their transformer.* names; lm_head checked to be tied. */
function gpt2Tensors(file: string, cfg: Json): { tensors: Map<string, { shape: number[]; data: Float32Array }>; dtypes: string[] } {
  const st = readSafetensors(new Uint8Array(fs.readFileSync(file)), file);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const dtypes = new Set<string>();
  let lmHead: SafetensorsEntry | null = null;
  const convert = (entry: SafetensorsEntry): Float32Array => {
    const data = toFloat32(entry);
    if (!data) throw new UserError(`${file}: tensor ${entry.name} is ${entry.dtype}; gptmed reads ${readableDtypes.join(', ')} weights`);
    dtypes.add(entry.dtype);
    return data;
  };
  for (const entry of st.tensors.values()) {
    if (entry.name === 'lm_head.weight') {
      lmHead = entry;
      continue;
    }
    // Files saved from GPT2Model (the hub's gpt2) leave out the "transformer." prefix.
    const name = entry.name.startsWith('transformer.') ? entry.name : `transformer.${entry.name}`;
    if (maskBuffer.test(name) && entry.shape.length !== 1) continue;
    if (!/^transformer\.(wte|wpe|ln_f|h\.\d+\.(ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj))\.(weight|bias)$/.test(name)) {
      throw new UserError(`${file}: tensor ${entry.name} is not part of GPT-2 (GPT2LMHeadModel); gptmed cannot import it`);
    }
    const data = convert(entry);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new UserError(`${file}: tensor ${entry.name} holds NaN or infinite values`);
    }
    tensors.set(name, { shape: entry.shape, data });
  }
  const wte = tensors.get('transformer.wte.weight');
  if (lmHead) {
    const head = convert(lmHead);
    const tied = wte && lmHead.shape.join() === wte.shape.join() && head.every((v, i) => v === wte.data[i]);
    if (!tied) throw new UserError(`${file}: lm_head.weight differs from transformer.wte.weight (an untied LM head) and is not supported; gptmed ties the output layer to the token embedding`);
  } else if (cfg.tie_word_embeddings === false) {
    throw new UserError(`${file}: no lm_head.weight, and config.json says tie_word_embeddings false; gptmed needs the LM head tied to the token embedding`);
  }
  return { tensors, dtypes: [...dtypes].sort() };
}

/** Turn a Hugging Face GPT-2 directory into a gptmed run directory (written atomically). */
export async function importHf(opts: ImportOptions): Promise<ImportResult> {
  const log = opts.log ?? (() => {});
  checkOutput(opts.output, opts.force ?? false, '-o', 'directory');
  const from = opts.from;
  if (!fs.existsSync(from)) throw new UserError(`${from}: no such directory`);
  if (!fs.statSync(from).isDirectory()) throw new UserError(`${from}: not a directory; give --from the Hugging Face model directory (config.json, model.safetensors, tokenizer.model)`);
  for (const f of [hfFiles.config, hfFiles.tokenizer, hfFiles.weights]) if (!fs.existsSync(path.join(from, f))) throw missing(from, f);

  const configFile = path.join(from, hfFiles.config);
  const cfg = readJson(configFile);
  const config = modelConfigOf(cfg, configFile);
  const restored = restoredOf(cfg, configFile, config);
  const drops = ['embd_pdrop', 'attn_pdrop'].filter((k) => cfg[k] !== undefined && cfg[k] !== config.dropout);
  if (drops.length > 0) log(`note: gptmed has one dropout; it takes resid_pdrop (${config.dropout}), not ${drops.map((k) => `${k} ${String(cfg[k])}`).join(', ')}`);

  const tokenizerFile = path.join(from, hfFiles.tokenizer);
  const tokenizerBytes = new Uint8Array(fs.readFileSync(tokenizerFile));
  const tokenizer = parseModelFile(tokenizerFile, tokenizerBytes);
  const tokenizerSha = sha256(tokenizerBytes);
  if (tokenizer.pieces.length !== config.vocabSize) {
    throw new UserError(`${configFile}: vocab_size ${config.vocabSize} differs from ${tokenizerFile}'s ${tokenizer.pieces.length} pieces; the model and the tokenizer do not belong together`);
  }
  if (restored.tokenizerSha256 !== null && restored.tokenizerSha256 !== tokenizerSha) {
    throw new UserError(`${tokenizerFile}: not the tokenizer the model was trained with (sha256 ${tokenizerSha.slice(0, 12)}, config.json's gptmed.tokenizerSha256 says ${restored.tokenizerSha256.slice(0, 12)}); restore the original`);
  }

  const weightsFile = path.join(from, hfFiles.weights);
  const { tensors, dtypes } = gpt2Tensors(weightsFile, cfg);
  const weights = fromGpt2(config, tensors, weightsFile);
  const used = new Set(toGpt2(config, weights).map((t) => t.name));
  const extra = [...tensors.keys()].find((name) => !used.has(name));
  if (extra) throw new UserError(`${weightsFile}: tensor ${extra} is not part of the GPT-2 config.json describes (n_layer ${config.nLayers}); gptmed cannot import it`);
  const specs = parameterSpecs(config);
  const named: NamedArray[] = specs.map((s) => ({ name: s.name, shape: s.shape, data: weights.get(s.name)! }));
  // A fresh AdamW: zero moments, in the order the trainer saves them (m and v of each parameter).
  const moments: NamedArray[] = specs.flatMap((s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    return (['m', 'v'] as const).map((k) => ({ name: `${k}.${s.name}`, shape: s.shape, data: new Float32Array(size) }));
  });
  const trainState: TrainState = {
    epoch: 0,
    cursor: 0,
    trainRows: 0,
    seed: 0, // unused: a run resumed from an import takes its own --seed (src/train/trainer.ts)
    optimizerUpdates: 0,
    tokensSeen: 0,
    bestValLoss: restored.bestValLoss,
    bestStep: restored.bestStep,
    lastValLoss: null,
    evalsWithoutImprovement: 0,
  };

  writeDirAtomic(opts.output, (dir) => {
    fs.writeFileSync(path.join(dir, runTokenizerFile), tokenizerBytes);
    const written = saveCheckpointArrays(
      dir,
      {
        step: restored.step,
        tokenizer: { file: runTokenizerRef, sha256: tokenizerSha },
        specialIds: specialIdsOf(tokenizer),
        seqLen: restored.seqLen,
        trainConfig: {},
        trainState,
        backend: 'import',
        modelConfig: config,
      },
      named,
      moments,
    );
    writePointer(dir, 'latest', written);
    writePointer(dir, 'best', written);
  });
  const parameterCount = named.reduce((n, a) => n + a.data.length, 0);
  return { runDir: opts.output, stepDir: path.join(opts.output, stepDirName(restored.step)), step: restored.step, modelConfig: config, parameterCount, dtypes };
}
