/**
 * The export stage: a checkpoint out to the formats other tools read (GGUF for llama.cpp and
 * everything built on it, a Hugging Face GPT-2 directory for transformers and PyTorch), and a
 * Hugging Face GPT-2 directory back in as a gptmed run (import.ts).
 */
import * as fs from 'node:fs';
import { writeDirAtomic, writeFileAtomic } from '../common/atomic.js';
import { UsageError } from '../common/errors.js';
import { checkOutput } from '../common/output.js';
import { PieceType } from '../tokenizer/model-proto.js';
import { ggufFile } from './gguf.js';
import { writeHfFiles } from './hf.js';
import { exportDtypes, readExportSource, type ExportDtype, type ExportSource } from './source.js';

export { exportDtypes, readExportSource, type ExportDtype, type ExportSource } from './source.js';
export { fromGpt2, toGpt2, type Gpt2Tensor } from './gpt2-layout.js';

/** gguf: one file for llama.cpp's gpt2 architecture; hf: a directory transformers loads as GPT2LMHeadModel. */
export const exportFormats = ['gguf', 'hf'] as const;
export type ExportFormat = (typeof exportFormats)[number];

export interface ExportOptions {
  /** A run directory (its best, else latest), a step directory, or a best/latest file. */
  checkpoint: string;
  format: ExportFormat;
  /** The .gguf file, or the directory of the hf export. */
  output: string;
  /** Default f32. */
  dtype?: ExportDtype;
  /** Replace an existing output. */
  force?: boolean;
  /**
   * Merge a LoRA run's adapters into its base's weights (W + alpha/r A B): what every export of a LoRA run
   * does; the flag says so explicitly, and is only noted for a run without adapters.
   */
  merge?: boolean;
}

export interface ExportResult {
  output: string;
  format: ExportFormat;
  dtype: ExportDtype;
  /** The step directory exported. */
  stepDir: string;
  /** Bytes written (the file, or the directory's files together). */
  bytes: number;
  /** What the user of the exported model should know (the CLI prints each as a note). */
  notes: string[];
}

function checkChoice<T extends string>(field: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`${field} "${value}": not one of ${choices.join(', ')}`);
  return value as T;
}

function sizeOf(target: string): number {
  const st = fs.statSync(target);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(target).reduce((n, name) => n + fs.statSync(`${target}/${name}`).size, 0);
}

/**
 * llama.cpp's SentencePiece tokenizer has no <unk> path: a character outside a vocabulary without byte
 * pieces (gptmed-train-tokenizer's default) aborts the whole process (std::out_of_range; measured with
 * node-llama-cpp 3.21.1). Byte pieces spell such characters, and llama.cpp then segments as gptmed does.
 */
function exportNotes(src: ExportSource, format: ExportFormat): string[] {
  if (format !== 'gguf' || src.tokenizer.pieces.some((p) => p.type === PieceType.BYTE)) return [];
  return [
    `${src.tokenizerPath} has no byte pieces: llama.cpp stops with an error on any character outside its vocabulary (an emoji, say); ` +
      'for a model meant for llama.cpp, train the tokenizer with --byte-fallback',
  ];
}

/** What an export of a LoRA run (or --merge) wrote. */
function mergeNotes(src: ExportSource, merge: boolean): string[] {
  const lora = src.manifest.lora;
  if (lora) return [`LoRA run: adapters (rank ${lora.rank}, alpha ${lora.alpha}, ${lora.targets.join(',')}) merged into the weights of its base ${lora.base.path}`];
  return merge ? [`--merge: ${src.stepDir} is not a LoRA run (no adapters to merge); its weights are exported as they are`] : [];
}

/** Export one checkpoint; the output is written atomically (a temporary, then a rename). */
export function exportModel(opts: ExportOptions): ExportResult {
  const format = checkChoice('format', opts.format, exportFormats);
  const dtype = checkChoice('dtype', opts.dtype ?? 'f32', exportDtypes);
  checkOutput(opts.output, opts.force ?? false, '-o', format === 'gguf' ? 'file' : 'directory');
  const src = readExportSource(opts.checkpoint);
  if (format === 'gguf') writeFileAtomic(opts.output, ggufFile(src, dtype));
  else writeDirAtomic(opts.output, (dir) => writeHfFiles(src, dtype, dir));
  return { output: opts.output, format, dtype, stepDir: src.stepDir, bytes: sizeOf(opts.output), notes: [...mergeNotes(src, opts.merge ?? false), ...exportNotes(src, format)] };
}
