/**
 * LoRA (Hu et al. 2021): low-rank adapters on a frozen model's linear layers. For a linear layer
 * y = x @ W + b (W stored [in, out]) with an adapter A [in, r], B [r, out]:
 *   y = x @ W + b + (alpha / r) * (dropout(x) @ A) @ B
 * B starts at zero, so a fresh adapter leaves the model exactly as it was; A starts Normal(0, 1/r)
 * (a seeded init; PEFT's default is Kaiming-uniform, either works since B = 0 at the start).
 * Merged: W' = W + (alpha / r) * A @ B, the same function without the adapter (no dropout at inference).
 * Plain data and plain arrays here: src/model/gpt.ts runs the adapters, checkpoints and exports merge them.
 */
import { UserError } from '../common/errors.js';
import { checkSettings, type Setting } from '../common/settings.js';
import type { ModelConfig } from './config.js';

/** Plain data: the adapters of a LoRA run. */
export interface LoraConfig {
  rank: number;
  alpha: number;
  /** Dropout on the adapter's input while training. */
  dropout: number;
  targets: LoraTarget[];
}

/** The base checkpoint a LoRA run adapts: its step directory, step, and the sha256 of its weights.bin. */
export interface LoraBase {
  path: string;
  step: number;
  sha256: string;
}

/** What a LoRA run's manifests record. */
export interface LoraRecord extends LoraConfig {
  base: LoraBase;
}

export interface AdapterSpec {
  name: string;
  shape: [number, number];
  init: 'loraNormal' | 'zeros';
}

/** The scale of an adapter's product. */
export const loraScale = (c: LoraConfig): number => c.alpha / c.rank;

/** The linear layers of a block an adapter can sit on (their names in parameterSpecs: h.{i}.{target}.weight). */
export const loraTargetNames = ['attn.qkv', 'attn.proj', 'mlp.fc', 'mlp.proj'] as const;
export type LoraTarget = (typeof loraTargetNames)[number];

/** [in, out] of a target's weight in a model of this config. */
export function targetShape(m: ModelConfig, target: LoraTarget): [number, number] {
  switch (target) {
    case 'attn.qkv':
      return [m.dModel, 3 * m.dModel];
    case 'attn.proj':
      return [m.dModel, m.dModel];
    case 'mlp.fc':
      return [m.dModel, m.dFf];
    case 'mlp.proj':
      return [m.dFf, m.dModel];
  }
}

/** "attn.qkv,mlp.fc" -> the targets; an unknown or repeated name, or none, is refused. */
export function parseLoraTargets(text: string, source = '--lora-targets'): LoraTarget[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UserError(`${source}: no target given; name one or more of ${loraTargetNames.join(', ')}`);
  for (const n of names) {
    if (!(loraTargetNames as readonly string[]).includes(n)) throw new UserError(`${source}: unknown target "${n}"; the targets are ${loraTargetNames.join(', ')}`);
  }
  if (new Set(names).size !== names.length) throw new UserError(`${source}: a target named twice in "${text}"`);
  return names as LoraTarget[];
}

/** A manifest's `lora` record, as fields: a hand-edited manifest gets one line naming the field, not a crash later. */
const loraRecordSettings: readonly Setting[] = [
  { name: 'rank', type: 'integer', min: 1, description: 'adapter rank' },
  { name: 'alpha', type: 'number', above: 0, description: 'adapter scale numerator' },
  { name: 'dropout', type: 'number', min: 0, below: 1, description: "dropout on the adapters' input" },
];
const loraBaseSettings: readonly Setting[] = [
  { name: 'path', type: 'path', description: "the base checkpoint's step directory" },
  { name: 'step', type: 'integer', min: 0, description: "the base checkpoint's step" },
];

/** Throws a UserError naming `source` and the field unless `value` is a well-formed LoraRecord. */
export function validateLoraRecord(value: unknown, source: string): asserts value is LoraRecord {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(value)) throw new UserError(`${source}: must be an object (rank, alpha, dropout, targets, base)`);
  checkSettings(loraRecordSettings, value, source);
  if (!Array.isArray(value.targets) || !value.targets.every((t) => typeof t === 'string')) throw new UserError(`${source}: targets must be a list of names`);
  parseLoraTargets(value.targets.join(','), `${source} targets`);
  if (!isObject(value.base)) throw new UserError(`${source}: base must be an object (path, step, sha256)`);
  checkSettings(loraBaseSettings, value.base, `${source} base`);
  if (typeof value.base.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(value.base.sha256)) throw new UserError(`${source} base: sha256 must be 64 hex digits`);
}

/** The largest rank every target of `c` allows in a model of this shape: min(in, out) of each. */
export function maxLoraRank(m: ModelConfig, targets: readonly LoraTarget[]): number {
  return Math.min(...targets.map((t) => Math.min(...targetShape(m, t))));
}

/** Every adapter tensor of a model of this config, in a fixed order (the order of saved adapters). */
export function adapterSpecs(m: ModelConfig, c: LoraConfig): AdapterSpec[] {
  const specs: AdapterSpec[] = [];
  for (let i = 0; i < m.nLayers; i++) {
    for (const t of c.targets) {
      const [nIn, nOut] = targetShape(m, t);
      specs.push({ name: `h.${i}.${t}.lora_a`, shape: [nIn, c.rank], init: 'loraNormal' });
      specs.push({ name: `h.${i}.${t}.lora_b`, shape: [c.rank, nOut], init: 'zeros' });
    }
  }
  return specs;
}

/** Adapter parameters of a model of this config. */
export function countAdapterParameters(m: ModelConfig, c: LoraConfig): number {
  return adapterSpecs(m, c).reduce((n, s) => n + s.shape[0] * s.shape[1], 0);
}

/**
 * The base weights with the adapters merged in: W' = W + (alpha / r) * A @ B for every target's weight;
 * every other tensor is the base's (shared, not copied).
 */
export function mergeAdapters(
  base: ReadonlyMap<string, Float32Array>,
  adapters: ReadonlyMap<string, Float32Array>,
  m: ModelConfig,
  c: LoraConfig,
  source = 'adapters',
): Map<string, Float32Array> {
  const out = new Map(base);
  const scale = loraScale(c);
  for (let i = 0; i < m.nLayers; i++) {
    for (const t of c.targets) {
      const [nIn, nOut] = targetShape(m, t);
      const name = `h.${i}.${t}`;
      const w = base.get(`${name}.weight`);
      const a = adapters.get(`${name}.lora_a`);
      const b = adapters.get(`${name}.lora_b`);
      if (!w || w.length !== nIn * nOut) throw new UserError(`${source}: base weight ${name}.weight is missing or has the wrong size`);
      if (!a || a.length !== nIn * c.rank || !b || b.length !== c.rank * nOut) throw new UserError(`${source}: adapter ${name} is missing or has the wrong size`);
      out.set(`${name}.weight`, addLowRank(w, a, b, nIn, nOut, c.rank, scale));
    }
  }
  return out;
}

/** w + scale * a @ b, with a [nIn, r] and b [r, nOut], row-major; in float64 sums, then float32. */
function addLowRank(w: Float32Array, a: Float32Array, b: Float32Array, nIn: number, nOut: number, r: number, scale: number): Float32Array {
  const out = new Float32Array(w.length);
  const row = new Float64Array(nOut);
  for (let i = 0; i < nIn; i++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const aik = a[i * r + k];
      if (aik === 0) continue;
      for (let j = 0, off = k * nOut; j < nOut; j++) row[j] += aik * b[off + j];
    }
    for (let j = 0, off = i * nOut; j < nOut; j++) out[off + j] = w[off + j] + scale * row[j];
  }
  return out;
}
