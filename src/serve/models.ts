/**
 * The models gptmed-serve offers: every run directory under --runs-dir that holds a loadable checkpoint
 * (its `best`, else `latest`), and each --checkpoint. A model's id is its run directory's name. The list is
 * read again on every /v1/models and for every request that names a model, so a run a job finished appears
 * without a restart, and a run whose `best` moved is served from its new checkpoint. Ids are names, never
 * paths: one with a slash, a backslash or a leading dot is unknown, so nothing outside --runs-dir is reached.
 *
 * Loaded models are kept in a least-recently-used cache of at most `maxLoaded`; an evicted model is disposed
 * once the last generation using it has released it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Device } from '../backend/index.js';
import { loadModel, type LoadedModel } from '../generate/index.js';
import { readManifest, resolveCheckpoint, type CheckpointManifest } from '../model/index.js';
import { ApiError } from './errors.js';

export interface ModelEntry {
  id: string;
  /** The step directory its weights are in (resolved now). */
  stepDir: string;
  manifest: CheckpointManifest;
  /** Where it came from: a run directory under runsDir, or the --checkpoint given. */
  source: string;
}

export interface RegistryOptions {
  runsDir: string;
  checkpoints: readonly string[];
  /** The backend models load on (default auto). */
  device?: Device;
  /** Loaded models kept at once (default 4). */
  maxLoaded?: number;
}

/** A loaded model lent to one generation; `release` when done with it. */
export interface ModelLease {
  lm: LoadedModel;
  release(): void;
}

interface Slot {
  loading: Promise<LoadedModel>;
  users: number;
  evicted: boolean;
}

/** Model ids are directory names: no separators, no leading dot ("." and ".." included), no NUL. */
export function isModelName(id: string): boolean {
  return id.length > 0 && id.length <= 255 && !/[/\\\0]/.test(id) && !id.startsWith('.');
}

/** The step directory and manifest of a run or checkpoint path; null when it holds no loadable checkpoint. */
function probe(dir: string): { stepDir: string; manifest: CheckpointManifest } | null {
  try {
    const stepDir = resolveCheckpoint(dir, 'best', '--checkpoint');
    return { stepDir, manifest: readManifest(stepDir) };
  } catch {
    return null;
  }
}

/** A --checkpoint's id: the name of its run directory (the step directory's parent), else its own name. */
function checkpointId(stepDir: string): string {
  const abs = path.resolve(stepDir);
  return path.basename(/^step-\d+$/.test(path.basename(abs)) ? path.dirname(abs) : abs);
}

export class ModelRegistry {
  private readonly maxLoaded: number;
  /** Keyed by step directory, in least- to most-recently-used order. */
  private readonly loaded = new Map<string, Slot>();

  constructor(private readonly options: RegistryOptions) {
    this.maxLoaded = options.maxLoaded ?? 4;
    // A --checkpoint that is not one is the user's mistake: say so at start (UserError), not on each request.
    for (const given of options.checkpoints) readManifest(resolveCheckpoint(given, 'best', '--checkpoint'));
  }

  private fromCheckpoints(): ModelEntry[] {
    const out: ModelEntry[] = [];
    for (const given of this.options.checkpoints) {
      const found = probe(given);
      if (found) out.push({ id: checkpointId(found.stepDir), ...found, source: given });
    }
    return out;
  }

  /** Every model now: the --checkpoint ones first (they win a name clash), then the runs, by name. */
  list(): ModelEntry[] {
    const entries = this.fromCheckpoints();
    const seen = new Set(entries.map((e) => e.id));
    let names: string[] = [];
    try {
      names = fs
        .readdirSync(this.options.runsDir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && isModelName(d.name))
        .map((d) => d.name)
        .sort();
    } catch {
      // No runs directory (yet): only the --checkpoint models.
    }
    for (const name of names) {
      if (seen.has(name)) continue;
      const dir = path.join(this.options.runsDir, name);
      const found = probe(dir);
      if (found) entries.push({ id: name, ...found, source: dir });
    }
    return entries;
  }

  /** The model named `id`, looked up afresh; 404 naming `model` when there is none. */
  find(id: string): ModelEntry {
    if (isModelName(id)) {
      const own = this.fromCheckpoints().find((e) => e.id === id);
      if (own) return own;
      const dir = path.join(this.options.runsDir, id);
      const found = probe(dir);
      if (found) return { id, ...found, source: dir };
    }
    throw new ApiError(404, `The model '${id}' does not exist (GET /v1/models lists the models)`, 'model', 'invalid_request_error', 'model_not_found');
  }

  /** The loaded model of `entry`, from the cache or loaded now; release it when the generation ends. */
  async acquire(entry: ModelEntry): Promise<ModelLease> {
    const key = entry.stepDir;
    let slot = this.loaded.get(key);
    if (slot) {
      this.loaded.delete(key);
    } else {
      const created: Slot = { loading: loadModel({ checkpoint: key, device: this.options.device }), users: 0, evicted: false };
      created.loading.catch(() => {
        if (this.loaded.get(key) === created) this.loaded.delete(key);
      });
      slot = created;
    }
    this.loaded.set(key, slot);
    this.evict();
    const held = slot;
    held.users++;
    let lm: LoadedModel;
    try {
      lm = await held.loading;
    } catch (err) {
      held.users--;
      throw new ApiError(500, `the model '${entry.id}' could not be loaded: ${(err as Error).message}`, 'model', 'server_error', 'model_load_failed');
    }
    let released = false;
    return {
      lm,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        if (held.evicted && held.users === 0) lm.dispose();
      },
    };
  }

  private evict(): void {
    while (this.loaded.size > this.maxLoaded) {
      const [key, slot] = this.loaded.entries().next().value as [string, Slot];
      this.loaded.delete(key);
      slot.evicted = true;
      if (slot.users === 0) slot.loading.then((lm) => lm.dispose(), () => {});
    }
  }

  /** Models in memory now (for tests and the benchmark). */
  get loadedCount(): number {
    return this.loaded.size;
  }

  /** Dispose every loaded model (the server is closing; no generation is running). */
  async close(): Promise<void> {
    const slots = [...this.loaded.values()];
    this.loaded.clear();
    for (const slot of slots) {
      slot.evicted = true;
      if (slot.users === 0) await slot.loading.then((lm) => lm.dispose(), () => {});
    }
  }
}
