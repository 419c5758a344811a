/**
 * gptmed's parameters <-> GPT-2's tensors, as Hugging Face's GPT2LMHeadModel names them.
 * gptmed is GPT-2 but for one scale: it embeds tokens as wte[idx] * sqrt(dModel). The scale
 * folds exactly into GPT-2's layout, so GPT-2's own forward computes gptmed's function:
 *   wte'  = wte * s                  x0 = wte'[idx] + wpe = wte[idx] * s + wpe
 *   lnF'  = (gamma / s, beta / s)    logits = lnF'(x) @ wte'^T = lnF(x) @ wte^T
 * with s = sqrt(dModel). Linear weights stay [in, out]: that is GPT-2's Conv1D layout.
 * GPT-2's c_attn splits its output into q, k, v in that order, as gptmed's qkv does.
 */
import { UserError } from '../common/errors.js';
import type { ModelConfig } from '../model/config.js';
import { parameterSpecs } from '../model/gpt.js';

export interface Gpt2Tensor {
  /** Hugging Face name, e.g. transformer.h.0.attn.c_attn.weight. */
  name: string;
  shape: number[];
  data: Float32Array;
}

/** gptmed name -> GPT-2 name for every parameter the two share as it is (no scale). */
function gpt2Name(name: string): string {
  if (name === 'wte') return 'transformer.wte.weight';
  if (name === 'wpe') return 'transformer.wpe.weight';
  const parts: Array<[RegExp, string]> = [
    [/^h\.(\d+)\.ln1\.gamma$/, 'transformer.h.$1.ln_1.weight'],
    [/^h\.(\d+)\.ln1\.beta$/, 'transformer.h.$1.ln_1.bias'],
    [/^h\.(\d+)\.ln2\.gamma$/, 'transformer.h.$1.ln_2.weight'],
    [/^h\.(\d+)\.ln2\.beta$/, 'transformer.h.$1.ln_2.bias'],
    [/^h\.(\d+)\.attn\.qkv\.(weight|bias)$/, 'transformer.h.$1.attn.c_attn.$2'],
    [/^h\.(\d+)\.attn\.proj\.(weight|bias)$/, 'transformer.h.$1.attn.c_proj.$2'],
    [/^h\.(\d+)\.mlp\.fc\.(weight|bias)$/, 'transformer.h.$1.mlp.c_fc.$2'],
    [/^h\.(\d+)\.mlp\.proj\.(weight|bias)$/, 'transformer.h.$1.mlp.c_proj.$2'],
    [/^lnF\.gamma$/, 'transformer.ln_f.weight'],
    [/^lnF\.beta$/, 'transformer.ln_f.bias'],
  ];
  for (const [pattern, replacement] of parts) {
    if (pattern.test(name)) return name.replace(pattern, replacement);
  }
  throw new Error(`gpt2Name: no GPT-2 name for parameter ${name}`);
}

/** How a gptmed parameter is scaled on its way into GPT-2's layout (the fold above). */
function foldScale(name: string, config: ModelConfig): number {
  const s = Math.sqrt(config.dModel);
  if (name === 'wte') return s;
  if (name === 'lnF.gamma' || name === 'lnF.beta') return 1 / s;
  return 1;
}

function scaled(data: Float32Array, factor: number): Float32Array {
  if (factor === 1) return data;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] * factor;
  return out;
}

/** GPT-2's tensors of a gptmed model, in gptmed's parameter order, the embedding scale folded in. */
export function toGpt2(config: ModelConfig, weights: ReadonlyMap<string, Float32Array>): Gpt2Tensor[] {
  return parameterSpecs(config).map((spec) => {
    const data = weights.get(spec.name);
    if (!data) throw new Error(`toGpt2: the weights lack ${spec.name}`);
    return { name: gpt2Name(spec.name), shape: spec.shape, data: scaled(data, foldScale(spec.name, config)) };
  });
}

/**
 * gptmed's weights from GPT-2's tensors (the fold undone). `shapeOf` gives each tensor's shape as
 * stored, checked against the config; `source` names the file in messages.
 */
export function fromGpt2(
  config: ModelConfig,
  tensors: ReadonlyMap<string, { shape: number[]; data: Float32Array }>,
  source: string,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const spec of parameterSpecs(config)) {
    const name = gpt2Name(spec.name);
    const t = tensors.get(name);
    if (!t) throw new UserError(`${source}: no tensor ${name}; not a GPT-2 model gptmed can read`);
    if (t.shape.join(',') !== spec.shape.join(',')) {
      throw new UserError(`${source}: tensor ${name} has shape [${t.shape.join(', ')}], config.json implies [${spec.shape.join(', ')}]`);
    }
    out.set(spec.name, scaled(t.data, 1 / foldScale(spec.name, config)));
  }
  return out;
}
