/** A Hugging Face GPT2LMHeadModel directory (being written). */
import type { ExportDtype, ExportSource } from './source.js';

/** Write config.json, model.safetensors, generation_config.json, tokenizer.model and README.md into the empty directory `dir`. */
export function writeHfFiles(src: ExportSource, dtype: ExportDtype, dir: string): void {
  throw new Error(`writeHfFiles(${src.stepDir}, ${dtype}, ${dir}): not written yet`);
}
