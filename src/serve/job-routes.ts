/**
 * The training jobs routes: POST /v1/jobs (multipart: `file` and `config`), GET /v1/jobs, GET /v1/jobs/:id,
 * GET /v1/jobs/:id/events (server-sent events), POST /v1/jobs/:id/cancel, POST /v1/jobs/:id/resume; and
 * POST /v1/datasets/preview (multipart, as a job's upload): what conversion makes of a file, nothing kept;
 * GET /v1/options (every setting with its default and help) and POST /v1/jobs/estimate (a run's time).
 * The jobs themselves are jobs.ts's; the config's keys job-config.ts's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UserError } from '../common/errors.js';
import type { ConvertOptions } from '../convert/convert.js';
import { previewDataset } from '../dataset/preview.js';
import { readManifest } from '../model/checkpoint.js';
import { checkpointTokenizerPath } from '../model/run-dir.js';
import { ApiError, notFound } from './errors.js';
import { FIXED_BY_INIT_FROM, JOB_KEYS, JobConfigError, NEED_INIT_FROM, jobConfigSchema, loadJobKeys, NAME_PATTERN, validateJobConfig, type JobConfig, type JobConfigSchema, type JobKey } from './job-config.js';
import { Estimator, jobRun, paceKey } from './estimate.js';
import { ENDED, isQaText, jobView, JobManager, safeFilename, type Job, type JobBase, type JobEvent } from './jobs.js';
import { ModelRegistry, type ModelEntry } from './models.js';
import { optionsView } from './options.js';
import type { ServeOptions } from './server.js';
import { receiveUpload } from './upload.js';

/** Longest wait between two writes on an event stream (a comment line keeps proxies from closing it). */
const KEEPALIVE_MS = 15_000;

/** `config`'s text checked against the schema: a 400 naming the key when it is wrong. */
function parseConfig(text: string | undefined, schema: JobConfigSchema): JobConfig {
  try {
    return validateJobConfig(text, schema);
  } catch (err) {
    if (err instanceof JobConfigError) throw new ApiError(400, err.message, err.param, 'invalid_request_error', 'invalid_config');
    throw err;
  }
}

interface IdParams {
  id: string;
}

const idSchema = { params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } };

/** What the job routes share. */
interface Jobs {
  serve: ServeOptions;
  keys: Map<string, JobKey>;
  schema: JobConfigSchema;
  manager: JobManager;
  /** Where config.initFrom's model is looked up (afresh on each request: a job that just finished is a base at once). */
  models: ModelRegistry;
}

export async function jobRoutes(app: FastifyInstance, opts: { serve: ServeOptions }): Promise<void> {
  const serve = opts.serve;
  const keys = await loadJobKeys();
  const manager = JobManager.open(serve.runsDir, keys, (line) => process.stderr.write(`${line}\n`));
  const maxBytes = Math.floor(serve.maxUploadMb * 1024 * 1024);
  await app.register(multipart, { limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 1 << 20, parts: 20 } });

  // Closing: the running job gets SIGINT and saves; event streams end; then (onClose) wait for it to exit.
  app.addHook('preClose', async () => manager.beginClose());
  app.addHook('onClose', async () => manager.close());

  const models = new ModelRegistry({ runsDir: serve.runsDir, checkpoints: serve.checkpoints });
  const jobs: Jobs = { serve, keys, schema: jobConfigSchema(keys), manager, models };
  uploadRoutes(app, jobs);
  settingRoutes(app, jobs);
  jobStateRoutes(app, jobs);
  jobEventRoutes(app, jobs);
}

/** A job by id: anything but a job's directory name under runsDir (`..`, a path) is simply not found. */
function findJob(manager: JobManager, request: FastifyRequest<{ Params: IdParams }>): Job {
  const id = request.params.id;
  const job = NAME_PATTERN.test(id) ? manager.get(id) : undefined;
  if (!job) throw notFound(`no job ${JSON.stringify(id)} (GET /v1/jobs lists them)`, 'id');
  return job;
}

/** The model config.initFrom names, with its checkpoint and tokenizer; a 400 naming the key when it cannot be a base. */
function jobBase(models: ModelRegistry, config: JobConfig): JobBase {
  const id = String(config.initFrom);
  const bad = (why: string): ApiError => new ApiError(400, `config.initFrom: ${why}`, 'config.initFrom', 'invalid_request_error', 'invalid_config');
  let entry: ModelEntry;
  try {
    entry = models.find(id);
  } catch {
    throw bad(`no model '${id}' (GET /v1/models lists them)`);
  }
  const tokenizer = checkpointTokenizerPath(entry.stepDir, entry.manifest);
  if (!tokenizer) throw bad(`the tokenizer of '${id}' (${entry.manifest.tokenizer.file}) is missing`);
  refuseSet(config, FIXED_BY_INIT_FROM, `comes from config.initFrom's model '${id}'; leave it out`);
  return { model: id, checkpoint: path.resolve(entry.stepDir), tokenizer: path.resolve(tokenizer) };
}

/** A 400 naming the first of `names` the config sets, with why it may not. */
function refuseSet(config: JobConfig, names: readonly string[], why: string): void {
  const set = names.find((k) => config[k] !== undefined);
  if (set) throw new ApiError(400, `config.${set}: ${why}`, `config.${set}`, 'invalid_request_error', 'invalid_config');
}

/** POST /v1/jobs (a new job from an upload and its config) and POST /v1/datasets/preview (an upload converted, nothing kept). */
function uploadRoutes(app: FastifyInstance, { serve, keys, schema, manager, models }: Jobs): void {
  app.post('/v1/jobs', async (request, reply) => {
    const upload = await receiveUpload(request, manager.uploadPath(), 'POST /v1/jobs', serve.maxUploadMb);
    try {
      const config = parseConfig(upload.configText, schema);
      const initFrom = config.initFrom === undefined ? undefined : jobBase(models, config);
      if (initFrom === undefined) refuseSet(config, NEED_INIT_FROM, 'needs config.initFrom (LoRA adapts an existing model)');
      const job = manager.create({ upload: upload.file, filename: upload.filename, bytes: upload.bytes, config, initFrom });
      upload.file = ''; // moved into the job's directory
      reply.code(201);
      return jobView(job);
    } finally {
      if (upload.file) fs.rmSync(upload.file, { force: true });
    }
  });

  app.post('/v1/datasets/preview', async (request) => {
    const upload = await receiveUpload(request, manager.uploadPath(), 'POST /v1/datasets/preview', serve.maxUploadMb);
    try {
      const config = parseConfig(upload.configText, schema);
      const other = Object.keys(config).filter((k) => !keys.get(k)?.stages.includes('convert'));
      if (other.length > 0) {
        throw new ApiError(400, `config.${other[0]}: not a conversion setting; the preview takes ${JOB_KEYS.convert.join(', ')}`, `config.${other[0]}`, 'invalid_request_error', 'invalid_config');
      }
      // Converted under the client's extension, as a job's upload is: it tells the format.
      const named = `${upload.file}${path.extname(safeFilename(upload.filename))}`;
      fs.renameSync(upload.file, named);
      upload.file = named;
      const qaText = config.format === undefined && isQaText(upload.file);
      const preview = await previewDataset({ ...(config as Partial<ConvertOptions>), input: upload.file, qaText }).catch((err: unknown) => {
        // The converter names the file it read: the client knows it by its own name.
        if (err instanceof UserError) throw new ApiError(400, err.message.split(upload.file).join(upload.filename), 'file', 'invalid_request_error', 'unreadable_data');
        throw err;
      });
      return { object: 'dataset.preview', filename: upload.filename, bytes: upload.bytes, ...preview };
    } finally {
      fs.rmSync(upload.file, { force: true });
    }
  });
}

/** GET /v1/options (every setting with its default and help) and POST /v1/jobs/estimate (a run's time). */
function settingRoutes(app: FastifyInstance, { keys, schema, manager, models }: Jobs): void {
  app.get('/v1/options', async () => optionsView(keys));

  // Tokens/s of the jobs that trained here (their last logged figure), by what decides the pace.
  const estimator = new Estimator(() => {
    const paces = new Map<string, { tokensPerSec: number; job: string }>();
    for (const job of manager.list()) {
      const tokensPerSec = job.record.progress.tokensPerSec;
      if (tokensPerSec === null) continue;
      try {
        const base = job.record.initFrom && readManifest(job.record.initFrom.checkpoint).modelConfig;
        paces.set(paceKey(jobRun(job.record.config, keys, base)), { tokensPerSec, job: job.record.id });
      } catch {
        // A job whose settings no longer resolve tells nothing about this machine's pace.
      }
    }
    return paces;
  });

  app.post<{ Body: { config?: unknown; pairs?: unknown } }>('/v1/jobs/estimate', async (request) => {
    const body = request.body;
    if (typeof body !== 'object' || body === null) throw new ApiError(400, 'body: a JSON object {"config": {...}, "pairs": N}', null, 'invalid_request_error', 'invalid_value');
    const extra = Object.keys(body).find((k) => k !== 'config' && k !== 'pairs');
    if (extra) throw new ApiError(400, `${extra}: unknown field; the body holds \`config\` and \`pairs\``, extra, 'invalid_request_error', 'unknown_field');
    if (!Number.isInteger(body.pairs) || (body.pairs as number) < 1) throw new ApiError(400, 'pairs: the number of Q&A pairs, a whole number from 1 (the preview gives it)', 'pairs', 'invalid_request_error', 'invalid_value');
    const config = parseConfig(JSON.stringify(body.config ?? {}), schema);
    const base = config.initFrom === undefined ? undefined : readManifest(jobBase(models, config).checkpoint).modelConfig;
    return { object: 'job.estimate', ...(await estimator.estimate(jobRun(config, keys, base), body.pairs as number)) };
  });
}

/** GET /v1/jobs, GET /v1/jobs/:id, POST /v1/jobs/:id/cancel and POST /v1/jobs/:id/resume. */
function jobStateRoutes(app: FastifyInstance, { manager }: Jobs): void {
  app.get('/v1/jobs', async () => ({ object: 'list', data: manager.list().map(jobView) }));

  app.get<{ Params: IdParams }>('/v1/jobs/:id', { schema: idSchema }, async (request) => jobView(findJob(manager, request)));

  app.post<{ Params: IdParams }>('/v1/jobs/:id/cancel', { schema: idSchema }, async (request) => jobView(await manager.cancel(findJob(manager, request))));

  app.post<{ Params: IdParams }>('/v1/jobs/:id/resume', { schema: idSchema }, async (request) => jobView(manager.resume(findJob(manager, request))));
}

/**
 * GET /v1/jobs/:id/events: one event per metrics.jsonl record (`metrics`) and per state or stage change
 * (`state`), from the job's start; the stream ends with the job (or when the server closes).
 */
function jobEventRoutes(app: FastifyInstance, { manager }: Jobs): void {
  app.get<{ Params: IdParams }>('/v1/jobs/:id/events', { schema: idSchema }, (request, reply) => {
    const job = findJob(manager, request);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const write = (e: JobEvent): void => {
      res.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
    };
    const ended = ENDED.has(job.record.state);
    const { history, unsubscribe } = manager.subscribe(job, write);
    for (const e of history) write(e);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    const end = (): void => {
      clearInterval(keepalive);
      unsubscribe();
      job.events.off('end', end);
      job.events.off('close', end);
      if (!res.writableEnded) res.end();
    };
    if (ended) return end();
    job.events.once('end', end);
    job.events.once('close', end);
    res.once('close', end);
  });
}
