/**
 * A trained model ready to answer: the tfjs backend started, the checkpoint's
 * weights loaded, and the tokenizer it was trained with, checked by hash.
 */
import * as fs from 'node:fs';
import { UserError } from '../common/errors.js';
import { initBackend, type BackendInfo, type Device } from '../backend/index.js';
import { checkpointTokenizerPath, loadCheckpoint, type CheckpointManifest, type GPT } from '../model/index.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.js';
import { trainDefaults } from '../train/config.js';

export interface LoadModelOptions {
  /** A run directory (its `best`, else `latest`), a step directory, or a `best`/`latest` file. Default: the checkpoint directory of configs/train.json. */
  checkpoint?: string;
  /** The tokenizer .model; default: the one recorded in the checkpoint. It must be the one the model was trained with. */
  tokenizer?: string;
  /** tfjs backend: auto (default), gpu, webgpu, cpu or wasm (MANUAL.md "Backends"). */
  device?: Device;
}

export interface LoadedModel {
  model: GPT;
  tokenizer: Tokenizer;
  manifest: CheckpointManifest;
  /** The step directory the weights came from. */
  checkpointDir: string;
  backend: BackendInfo;
  /** Release the weights. */
  dispose(): void;
}

/** The checkpoint directory training writes to by default (configs/train.json, "checkpointDir"). */
export function defaultCheckpointDir(): string {
  return trainDefaults().checkpointDir;
}

export async function loadModel(options: LoadModelOptions = {}): Promise<LoadedModel> {
  const backend = await initBackend(options.device ?? 'auto');
  const given = options.checkpoint ?? defaultCheckpointDir();
  if (!fs.existsSync(given)) {
    throw new UserError(
      options.checkpoint
        ? `${given}: no such checkpoint or run directory`
        : `${given}: no checkpoint in the default checkpoint directory; train one with gptmed-train or pass --checkpoint`,
    );
  }
  const { model, manifest, dir } = await loadCheckpoint(given, '--checkpoint');
  try {
    const tokenizerFile = options.tokenizer ?? checkpointTokenizerPath(dir, manifest);
    if (!tokenizerFile) {
      throw new UserError(`${dir}: the tokenizer it was trained with, ${manifest.tokenizer.file}, is missing; pass --tokenizer with that .model file`);
    }
    const tokenizer = await loadTokenizer(tokenizerFile);
    if (tokenizer.sha256 !== manifest.tokenizer.sha256) {
      const trainedWith = manifest.tokenizer.sha256.slice(0, 12);
      // The recorded file itself changed (retrained in place): say so, rather than call it another file.
      throw new UserError(
        options.tokenizer
          ? `${tokenizerFile}: not the tokenizer this model was trained with (${manifest.tokenizer.file}, sha256 ${trainedWith}); pass that .model file with --tokenizer`
          : `${tokenizerFile}: changed since this model was trained with it (sha256 now ${tokenizer.sha256.slice(0, 12)}, then ${trainedWith}); restore it, or pass the original .model with --tokenizer`,
      );
    }
    return { model, tokenizer, manifest, checkpointDir: dir, backend, dispose: () => model.dispose() };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** Where a fine-tuned model's training started (gptmed-train --init-from), in one line; null for a model trained from scratch. */
export function initFromLine(lm: LoadedModel): string | null {
  const i = lm.manifest.initFrom;
  return i ? `model: ${lm.checkpointDir} (step ${lm.manifest.step}), initialised from ${i.path} (step ${i.step}, weights sha256 ${i.sha256.slice(0, 12)})` : null;
}
