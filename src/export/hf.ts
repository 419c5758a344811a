/**
 * A Hugging Face GPT2LMHeadModel directory (gptmed-export --format hf). Five files:
 *
 *   config.json             transformers' GPT2Config, plus a "gptmed" object (below)
 *   model.safetensors       GPT-2's tensors (gpt2-layout.ts: the embedding scale folded in), named
 *                           transformer.wte.weight, transformer.wpe.weight, transformer.h.<i>.ln_1.weight|bias,
 *                           .attn.c_attn.weight|bias, .attn.c_proj.weight|bias, .ln_2.weight|bias,
 *                           .mlp.c_fc.weight|bias, .mlp.c_proj.weight|bias, transformer.ln_f.weight|bias;
 *                           linear weights [in, out] (Conv1D); F32 or F16; no lm_head.weight (tied to wte)
 *   generation_config.json  bos/eos (pad) ids and greedy decoding
 *   tokenizer.model         the SentencePiece model the model was trained with, byte for byte
 *   README.md               a model card: how it was trained, on what, its val loss, how to prompt it
 *
 * config.json's GPT-2 fields: vocab_size, n_positions (= n_ctx = gptmed's maxSeqLen), n_embd, n_layer,
 * n_head, n_inner (dFf), activation_function "gelu" (the exact erf GELU gptmed computes; "gelu_new" is the
 * tanh form), layer_norm_epsilon 1e-5, resid/embd/attn_pdrop (gptmed's one dropout), bos/eos_token_id,
 * pad_token_id (only where the tokenizer has a pad piece), tie_word_embeddings true, torch_dtype.
 *
 * The "gptmed" object (transformers keeps unknown keys and ignores them) carries what gptmed-import needs
 * to restore a checkpoint as it was; a tool that trains the model elsewhere (scripts/torch/train_ddp.py)
 * updates it and writes the directory back:
 *   format "gptmed-hf", version 1
 *   step             optimizer steps the weights have had (import names its step directory after it)
 *   seqLen           tokens per training row (the shards' --max-length)
 *   tokenizerSha256  sha256 of tokenizer.model (import refuses another tokenizer.model)
 *   specialIds       {pad, unk, bos, eos} as the tokenizer has them (pad -1: none); informational
 *   bestValLoss, bestStep, lastValLoss, tokensSeen   from training (null/0 where unknown); import keeps
 *                    bestValLoss (and bestStep when it is this step) so further training keeps `best` honest
 * Everything but step may be missing: import then takes seqLen = n_positions and no val loss.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveOptions } from '../generate/options.js';
import type { JsonObject, JsonValue } from '../model/checkpoint.js';
import type { ModelConfig } from '../model/config.js';
import { specialIdsOf, type SpecialIds } from '../tokenizer/tokenizer.js';
import { toGpt2 } from './gpt2-layout.js';
import { safetensorsBytes } from './safetensors.js';
import type { ExportDtype, ExportSource } from './source.js';

export const hfFiles = {
  config: 'config.json',
  weights: 'model.safetensors',
  generation: 'generation_config.json',
  tokenizer: 'tokenizer.model',
  readme: 'README.md',
} as const;

export const gptmedBlockFormat = 'gptmed-hf';

/** config.json's "gptmed" object (see the top of this file). */
export interface GptmedBlock {
  format: typeof gptmedBlockFormat;
  version: 1;
  step: number;
  seqLen: number;
  tokenizerSha256: string;
  specialIds: SpecialIds;
  bestValLoss: number | null;
  bestStep: number | null;
  lastValLoss: number | null;
  tokensSeen: number;
}

const numberOrNull = (v: JsonValue | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function gptmedBlock(src: ExportSource, specialIds: SpecialIds): GptmedBlock {
  const state = src.manifest.trainState;
  return {
    format: gptmedBlockFormat,
    version: 1,
    step: src.manifest.step,
    seqLen: src.manifest.seqLen,
    tokenizerSha256: src.manifest.tokenizer.sha256,
    specialIds,
    bestValLoss: numberOrNull(state.bestValLoss),
    bestStep: numberOrNull(state.bestStep),
    lastValLoss: numberOrNull(state.lastValLoss),
    tokensSeen: numberOrNull(state.tokensSeen) ?? 0,
  };
}

/** The ids GPT-2's config and generation config name: bos, eos, and pad where the tokenizer has one. */
function tokenIds(ids: SpecialIds): JsonObject {
  return { bos_token_id: ids.bos, eos_token_id: ids.eos, ...(ids.pad >= 0 ? { pad_token_id: ids.pad } : {}) };
}

/** config.json for transformers' GPT2LMHeadModel. */
export function hfConfig(config: ModelConfig, dtype: ExportDtype, specialIds: SpecialIds, gptmed: GptmedBlock): JsonObject {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: config.vocabSize,
    n_positions: config.maxSeqLen,
    n_ctx: config.maxSeqLen,
    n_embd: config.dModel,
    n_layer: config.nLayers,
    n_head: config.nHeads,
    n_inner: config.dFf,
    activation_function: 'gelu',
    layer_norm_epsilon: 1e-5,
    resid_pdrop: config.dropout,
    embd_pdrop: config.dropout,
    attn_pdrop: config.dropout,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    use_cache: true,
    ...tokenIds(specialIds),
    tie_word_embeddings: true,
    torch_dtype: dtype === 'f16' ? 'float16' : 'float32',
    gptmed: gptmed as unknown as JsonObject,
  };
}

/** Greedy decoding, as gptmed-generate --preset greedy; at most as many new tokens as the context holds. */
function generationConfig(specialIds: SpecialIds, config: ModelConfig): JsonObject {
  const maxNewTokens = Math.min(resolveOptions({ preset: 'greedy' }).maxNewTokens, config.maxSeqLen);
  return { ...tokenIds(specialIds), do_sample: false, num_beams: 1, max_new_tokens: maxNewTokens };
}

/** The Q&A file the shards were made from, where their meta.json is still beside them (for the model card only). */
function trainingText(trainData: JsonValue | undefined, tokenizerSha256: string): string | null {
  if (typeof trainData !== 'string') return null;
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(path.dirname(trainData), 'meta.json'), 'utf8')) as { source?: { file?: unknown }; tokenizer?: { sha256?: unknown } };
    if (meta.tokenizer?.sha256 !== tokenizerSha256 || typeof meta.source?.file !== 'string') return null;
    return path.basename(meta.source.file);
  } catch {
    return null;
  }
}

function modelCard(src: ExportSource, dtype: ExportDtype, specialIds: SpecialIds, block: GptmedBlock): string {
  const c = src.manifest.modelConfig;
  const t = src.manifest.trainConfig;
  const s = src.manifest.trainState;
  const millions = (src.manifest.parameterCount / 1e6).toFixed(2);
  const shards = typeof t.trainData === 'string' ? path.basename(t.trainData) : null;
  const text = trainingText(t.trainData, block.tokenizerSha256);
  const data = text ? `\`${text}\` (tokenized as \`${shards}\`)` : shards ? `\`${shards}\`` : 'data not recorded in the checkpoint';
  const loss = (x: number): string => `${x.toFixed(4)} (perplexity ${Math.exp(x).toFixed(2)})`;
  const val =
    block.bestValLoss !== null && block.bestStep === block.step
      ? `${loss(block.bestValLoss)}, measured at this step`
      : block.lastValLoss !== null
        ? `${loss(block.lastValLoss)} at the last evaluation${block.bestValLoss !== null ? `; the run's best was ${loss(block.bestValLoss)} at step ${block.bestStep ?? '-'}` : ''}`
        : 'not measured';
  const setting = (k: string): string => (t[k] === undefined ? '-' : String(t[k]));
  const padNote = specialIds.pad >= 0 ? `, pad ${specialIds.pad}` : '';
  return `---
library_name: transformers
tags:
- gpt2
- gptmed
- question-answering
---
# A gptmed question-answering model

A small GPT trained from scratch with gptmed on question/answer pairs,
in GPT-2's layout: transformers loads it as \`GPT2LMHeadModel\`. The weights are ${dtype === 'f16' ? 'float16' : 'float32'}.

## Model
- ${c.nLayers} layers, ${c.nHeads} heads, d_model ${c.dModel}, MLP ${c.dFf}, context ${c.maxSeqLen} tokens, vocabulary ${c.vocabSize}: ${millions} M parameters
- pre-LayerNorm blocks, exact (erf) GELU, LM head tied to the token embedding
- tokenizer: SentencePiece (\`tokenizer.model\`), special ids bos ${specialIds.bos}, eos ${specialIds.eos}, unk ${specialIds.unk}${padNote}

## Training
- data: ${data}, rows of ${block.seqLen} tokens
- ${block.step} optimizer steps (epoch ${String(s.epoch ?? '-')}, ${String(s.tokensSeen ?? '-')} tokens seen), batch ${setting('batchSize')} x ${setting('gradAccum')} accumulation, AdamW lr ${setting('learningRate')} (warmup ${setting('warmupSteps')}, min ${setting('minLr')}), weight decay ${setting('weightDecay')}, dropout ${c.dropout}, seed ${setting('seed')}, on ${src.manifest.backend}
- validation loss: ${val}

## Prompting
The model was trained on \`<bos>Q: question\\nA: answer<eos>\`. Give it the token ids of
\`<bos>\` followed by the SentencePiece ids of \`"Q: " + question + "\\nA:"\` (no space after the colon); the answer
is what it generates up to \`<eos>\` (id ${specialIds.eos}). Keep prompt plus answer within ${c.maxSeqLen} tokens.
\`generation_config.json\` sets greedy decoding, as \`gptmed-generate --preset greedy\`.

\`\`\`python
import torch
import sentencepiece as spm
from transformers import GPT2LMHeadModel

model_dir = "path/to/this/directory"
model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
sp = spm.SentencePieceProcessor(model_file=f"{model_dir}/tokenizer.model")

question = "What is a fever?"
ids = [sp.bos_id()] + sp.encode(f"Q: {question}\\nA:")
with torch.no_grad():
    out = model.generate(torch.tensor([ids]), max_new_tokens=min(200, ${c.maxSeqLen} - len(ids)))
print(sp.decode(out[0, len(ids):].tolist()).strip())
\`\`\`

\`gptmed-import --from path/to/this/directory -o run-dir\` turns the directory back into a gptmed run
(gptmed-generate, gptmed-evaluate, gptmed-train --resume-from).
`;
}

/** Write config.json, model.safetensors, generation_config.json, tokenizer.model and README.md into the empty directory `dir`. */
export function writeHfFiles(src: ExportSource, dtype: ExportDtype, dir: string): void {
  const config = src.manifest.modelConfig;
  const specialIds = specialIdsOf(src.tokenizer);
  const block = gptmedBlock(src, specialIds);
  const json = (value: JsonObject): string => `${JSON.stringify(value, null, 2)}\n`;
  const tensors = toGpt2(config, src.weights);
  fs.writeFileSync(path.join(dir, hfFiles.weights), safetensorsBytes(tensors, dtype === 'f16' ? 'F16' : 'F32'));
  fs.writeFileSync(path.join(dir, hfFiles.config), json(hfConfig(config, dtype, specialIds, block)));
  fs.writeFileSync(path.join(dir, hfFiles.generation), json(generationConfig(specialIds, config)));
  fs.writeFileSync(path.join(dir, hfFiles.tokenizer), src.tokenizerBytes);
  fs.writeFileSync(path.join(dir, hfFiles.readme), modelCard(src, dtype, specialIds, block));
}
