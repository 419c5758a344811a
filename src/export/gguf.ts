/** GGUF v3 for llama.cpp's gpt2 architecture (being written). */
import type { ExportDtype, ExportSource } from './source.js';

/** The whole .gguf file of a checkpoint: header, metadata (tokenizer, chat template), tensors. */
export function ggufFile(src: ExportSource, dtype: ExportDtype): Uint8Array {
  throw new Error(`ggufFile(${src.stepDir}, ${dtype}): not written yet`);
}
