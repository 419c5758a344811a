/**
 * A model's files over HTTP: GET /v1/models/:id/checkpoint (a .tar of a run directory holding the model's
 * checkpoint, its tokenizer copy and `best`/`latest` pointers: unpacked anywhere, every command loads it),
 * and its exports: POST /v1/models/:id/exports writes one (gptmed-export's exportModel) into the run's
 * `exports/` folder, GET lists them, GET .../exports/:file downloads one (an hf directory as a .tar).
 * Exports are kept only for models under --runs-dir: a --checkpoint is the user's folder, not the server's.
 * An export of the same checkpoint, format and dtype is the same bytes, so an existing one is reused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { pack } from 'tar-stream';
import { exportDtypes, exportFormats, exportModel, type ExportDtype, type ExportFormat } from '../export/index.js';
import { checkpointTokenizerPath } from '../model/index.js';
import { ApiError, notFound } from './errors.js';
import { isModelName, type ModelEntry, type ModelRegistry } from './models.js';

const EXPORTS_DIR = 'exports';

interface TarEntry {
  /** The name inside the archive. */
  name: string;
  /** A file on disk, or the text of a small file. */
  file?: string;
  text?: string;
}

/** Stream a .tar of `entries` as a download named `filename`. */
async function sendTar(reply: FastifyReply, filename: string, entries: TarEntry[]): Promise<void> {
  const tar = pack();
  reply.header('content-type', 'application/x-tar').header('content-disposition', `attachment; filename="${filename}"`);
  void reply.send(tar);
  for (const e of entries) {
    if (e.text !== undefined) {
      tar.entry({ name: e.name, mode: 0o644 }, e.text);
      continue;
    }
    const size = fs.statSync(e.file!).size;
    await new Promise<void>((resolve, reject) => {
      const sink = tar.entry({ name: e.name, size, mode: 0o644 }, (err) => (err ? reject(err) : resolve()));
      fs.createReadStream(e.file!).on('error', reject).pipe(sink);
    });
  }
  tar.finalize();
}

/** The run directory a model's checkpoint is in, as files of an archive rooted at `<id>/`. */
function checkpointEntries(e: ModelEntry): TarEntry[] {
  const step = path.basename(e.stepDir);
  const tokenizer = checkpointTokenizerPath(e.stepDir, e.manifest);
  if (!tokenizer) throw new ApiError(409, `the tokenizer of model '${e.id}' is missing (${e.manifest.tokenizer.file}); the checkpoint cannot be used without it`, 'id', 'invalid_request_error', 'tokenizer_missing');
  const files = fs.readdirSync(e.stepDir).filter((f) => fs.statSync(path.join(e.stepDir, f)).isFile());
  return [
    { name: `${e.id}/tokenizer.model`, file: tokenizer },
    ...files.map((f) => ({ name: `${e.id}/${step}/${f}`, file: path.join(e.stepDir, f) })),
    { name: `${e.id}/latest`, text: `${step}\n` },
    { name: `${e.id}/best`, text: `${step}\n` },
  ];
}

interface ExportView {
  object: 'model.export';
  model: string;
  format: ExportFormat;
  dtype: ExportDtype;
  file: string;
  bytes: number;
  url: string;
  createdAt: string;
}

/** `<step>-<dtype>.gguf` or `<step>-<dtype>-hf`: the name says what it holds. */
const EXPORT_NAME = /^(step-\d+)-(f32|f16)(\.gguf|-hf)$/;

function exportName(stepDir: string, format: ExportFormat, dtype: ExportDtype): string {
  return `${path.basename(stepDir)}-${dtype}${format === 'gguf' ? '.gguf' : '-hf'}`;
}

function bytesOf(target: string): number {
  const st = fs.statSync(target);
  return st.isDirectory() ? fs.readdirSync(target).reduce((n, f) => n + fs.statSync(path.join(target, f)).size, 0) : st.size;
}

function exportView(id: string, dir: string, file: string): ExportView | null {
  const m = EXPORT_NAME.exec(file);
  if (!m) return null;
  const target = path.join(dir, file);
  return {
    object: 'model.export',
    model: id,
    format: m[3] === '.gguf' ? 'gguf' : 'hf',
    dtype: m[2] as ExportDtype,
    file,
    bytes: bytesOf(target),
    url: `/v1/models/${encodeURIComponent(id)}/exports/${file}`,
    createdAt: fs.statSync(target).mtime.toISOString(),
  };
}

export function modelFileRoutes(app: FastifyInstance, models: ModelRegistry, runsDir: string): void {
  /** The exports folder of a model under runsDir; 409 for a --checkpoint model. */
  const exportsDir = (e: ModelEntry): string => {
    const own = path.resolve(runsDir, e.id);
    if (path.resolve(e.source) !== own) {
      throw new ApiError(409, `model '${e.id}' is served from --checkpoint ${e.source}, outside --runs-dir; export it with gptmed-export`, 'id', 'invalid_request_error', 'not_in_runs_dir');
    }
    return path.join(own, EXPORTS_DIR);
  };
  const list = (e: ModelEntry): ExportView[] => {
    const dir = exportsDir(e);
    const names = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
    return names.map((f) => exportView(e.id, dir, f)).filter((v): v is ExportView => v !== null);
  };

  app.get<{ Params: { id: string } }>('/v1/models/:id/checkpoint', async (request, reply) => {
    const e = models.find(request.params.id);
    await sendTar(reply, `${e.id}-${path.basename(e.stepDir)}.tar`, checkpointEntries(e));
    return reply;
  });

  app.get<{ Params: { id: string } }>('/v1/models/:id/exports', async (request) => ({ object: 'list', data: list(models.find(request.params.id)) }));

  const exportBody = {
    type: 'object',
    required: ['format'],
    properties: { format: { type: 'string', enum: [...exportFormats] }, dtype: { type: 'string', enum: [...exportDtypes] } },
    additionalProperties: false,
  };
  app.post<{ Params: { id: string }; Body: { format: ExportFormat; dtype?: ExportDtype } }>('/v1/models/:id/exports', { schema: { body: exportBody } }, async (request, reply) => {
    const e = models.find(request.params.id);
    const dir = exportsDir(e);
    const dtype = request.body.dtype ?? 'f32';
    const name = exportName(e.stepDir, request.body.format, dtype);
    if (!fs.existsSync(path.join(dir, name))) {
      fs.mkdirSync(dir, { recursive: true });
      exportModel({ checkpoint: e.stepDir, format: request.body.format, dtype, output: path.join(dir, name) });
      reply.code(201);
    }
    return exportView(e.id, dir, name);
  });

  app.get<{ Params: { id: string; file: string } }>('/v1/models/:id/exports/:file', async (request, reply) => {
    const e = models.find(request.params.id);
    const dir = exportsDir(e);
    const file = request.params.file;
    const target = path.join(dir, file);
    if (!isModelName(file) || !EXPORT_NAME.test(file) || !fs.existsSync(target)) throw notFound(`model '${e.id}' has no export ${JSON.stringify(file)} (GET /v1/models/${e.id}/exports lists them)`, 'file');
    if (file.endsWith('.gguf')) {
      reply.header('content-type', 'application/octet-stream').header('content-disposition', `attachment; filename="${e.id}-${file}"`);
      return reply.send(fs.createReadStream(target));
    }
    const files = fs.readdirSync(target).sort();
    await sendTar(reply, `${e.id}-${file}.tar`, files.map((f) => ({ name: `${e.id}-${file}/${f}`, file: path.join(target, f) })));
    return reply;
  });
}
