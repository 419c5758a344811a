/**
 * The training jobs routes: POST /v1/jobs (multipart: `file` and `config`), GET /v1/jobs, GET /v1/jobs/:id,
 * GET /v1/jobs/:id/events (server-sent events), POST /v1/jobs/:id/cancel, POST /v1/jobs/:id/resume.
 * The jobs themselves are jobs.ts's; the config's keys job-config.ts's.
 */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, notFound } from './errors.js';
import { JobConfigError, jobConfigSchema, loadJobKeys, NAME_PATTERN, validateJobConfig } from './job-config.js';
import { ENDED, jobView, JobManager, type Job, type JobEvent } from './jobs.js';
import type { ServeOptions } from './server.js';

/** Longest wait between two writes on an event stream (a comment line keeps proxies from closing it). */
const KEEPALIVE_MS = 15_000;

interface IdParams {
  id: string;
}

const idSchema = { params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } };

export async function jobRoutes(app: FastifyInstance, opts: { serve: ServeOptions }): Promise<void> {
  const serve = opts.serve;
  const keys = await loadJobKeys();
  const schema = jobConfigSchema(keys);
  const manager = JobManager.open(serve.runsDir, keys, (line) => process.stderr.write(`${line}\n`));
  const maxBytes = Math.floor(serve.maxUploadMb * 1024 * 1024);
  await app.register(multipart, { limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 1 << 20, parts: 20 } });

  // Closing: the running job gets SIGINT and saves; event streams end; then (onClose) wait for it to exit.
  app.addHook('preClose', async () => manager.beginClose());
  app.addHook('onClose', async () => manager.close());

  /** A job by id: anything but a job's directory name under runsDir (`..`, a path) is simply not found. */
  const find = (request: FastifyRequest<{ Params: IdParams }>): Job => {
    const id = request.params.id;
    const job = NAME_PATTERN.test(id) ? manager.get(id) : undefined;
    if (!job) throw notFound(`no job ${JSON.stringify(id)} (GET /v1/jobs lists them)`, 'id');
    return job;
  };

  app.post('/v1/jobs', async (request, reply) => {
    if (!request.isMultipart()) {
      throw new ApiError(400, 'file: POST /v1/jobs takes multipart/form-data with a field `file` (the data) and a field `config` (JSON)', 'file', 'invalid_request_error', 'missing_file');
    }
    let upload: string | null = null;
    let filename = '';
    let bytes = 0;
    let configText: string | undefined;
    try {
      for await (const part of request.parts()) {
        if (part.fieldname === 'config') {
          // A text field, or a file (curl -F config=@config.json).
          configText = part.type === 'file' ? (await part.toBuffer()).toString('utf8') : String(part.value);
        } else if (part.fieldname === 'file' && part.type === 'file') {
          upload = manager.uploadPath();
          filename = part.filename;
          await pipeline(part.file, fs.createWriteStream(upload, { flags: 'wx' }));
          bytes = fs.statSync(upload).size;
        } else {
          if (part.type === 'file') part.file.resume();
          throw new ApiError(400, `${part.fieldname}: unknown field; POST /v1/jobs takes \`file\` (the data file) and \`config\` (JSON)`, part.fieldname, 'invalid_request_error', 'unknown_field');
        }
      }
      if (!upload) throw new ApiError(400, 'file: missing; send the data file as the multipart file field `file`', 'file', 'invalid_request_error', 'missing_file');
      let config;
      try {
        config = validateJobConfig(configText, schema);
      } catch (err) {
        if (err instanceof JobConfigError) throw new ApiError(400, err.message, err.param, 'invalid_request_error', 'invalid_config');
        throw err;
      }
      const job = manager.create({ upload, filename, bytes, config });
      upload = null; // moved into the job's directory
      reply.code(201);
      return jobView(job);
    } catch (err) {
      if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') {
        throw new ApiError(413, `file: larger than this server takes (--max-upload-mb ${serve.maxUploadMb})`, 'file', 'invalid_request_error', 'file_too_large');
      }
      throw err;
    } finally {
      if (upload) fs.rmSync(upload, { force: true });
    }
  });

  app.get('/v1/jobs', async () => ({ object: 'list', data: manager.list().map(jobView) }));

  app.get<{ Params: IdParams }>('/v1/jobs/:id', { schema: idSchema }, async (request) => jobView(find(request)));

  app.post<{ Params: IdParams }>('/v1/jobs/:id/cancel', { schema: idSchema }, async (request) => jobView(await manager.cancel(find(request))));

  app.post<{ Params: IdParams }>('/v1/jobs/:id/resume', { schema: idSchema }, async (request) => jobView(manager.resume(find(request))));

  // One event per metrics.jsonl record (`metrics`) and per state or stage change (`state`), from the job's
  // start; the stream ends with the job (or when the server closes).
  app.get<{ Params: IdParams }>('/v1/jobs/:id/events', { schema: idSchema }, (request, reply) => {
    const job = find(request);
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
