/**
 * gptmed-serve's HTTP server (Fastify): the OpenAI-compatible inference API (inference.ts), training jobs
 * (job-routes.ts) and /health, behind one error shape (errors.ts) and an optional bearer key on /v1.
 * Fastify validates every body and query against the routes' JSON schemas before a handler runs.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { initBackend, type BackendInfo, type Device } from '../backend/index.js';
import { UsageError, UserError } from '../common/errors.js';
import { ApiError, installErrorHandler } from './errors.js';
import { inferenceRoutes } from './inference.js';
import { jobRoutes } from './job-routes.js';
import { pageRoutes } from './page.js';

export interface ServeOptions {
  /** Run directories under it are the models; training jobs write theirs here. */
  runsDir: string;
  /** More models: run or step directories outside runsDir (the id is the run directory's name). */
  checkpoints: string[];
  /** Default 127.0.0.1; any other address needs apiKey. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** When set, every /v1 route needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Generations at once; more wait in a bounded queue. */
  maxConcurrent: number;
  /** Largest upload (POST /v1/jobs), in MB. */
  maxUploadMb: number;
  /** Fastify's request log on stderr (off in tests). */
  logger?: boolean;
  /** The backend the served models generate on (default auto; MANUAL.md "Backends"). Jobs take their own. */
  device?: Device;
}

export interface ServeDefaults {
  runsDir: string;
  host: string;
  port: number;
  maxConcurrent: number;
  maxUploadMb: number;
}

export const serveDefaults: ServeDefaults = { runsDir: 'runs', host: '127.0.0.1', port: 8080, maxConcurrent: 2, maxUploadMb: 200 };

const loopback = new Set(['127.0.0.1', '::1', 'localhost']);

/** Anyone who can reach a non-loopback address could use the models and start jobs: that needs a key. */
export function checkBinding(host: string, apiKey: string | undefined): void {
  if (!loopback.has(host) && !apiKey) {
    throw new UserError(`--host ${host} makes the server reachable from other machines; give --api-key KEY too (or bind 127.0.0.1)`);
  }
}

/** Settings checked once, here: the library names fields, the CLI's flags carry the same names in kebab case. */
function checkOptions(o: ServeOptions): void {
  const whole = (field: string, value: number, min: number, max: number): void => {
    if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`${field} ${value}: must be a whole number from ${min} to ${max}`);
  };
  whole('port', o.port, 0, 65535);
  whole('maxConcurrent', o.maxConcurrent, 1, 64);
  if (!(o.maxUploadMb > 0)) throw new UsageError(`maxUploadMb ${o.maxUploadMb}: must be above 0`);
  checkBinding(o.host, o.apiKey);
}

/** Compare keys in constant time (hashed first: timingSafeEqual needs equal lengths, and lengths must not leak). */
function sameKey(given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function requireKey(app: FastifyInstance, apiKey: string): void {
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/v1')) return;
    const header = request.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(header);
    if (!m || !sameKey(m[1], apiKey)) {
      throw new ApiError(401, 'missing or wrong API key: send Authorization: Bearer <key> (the --api-key the server was started with)', null, 'authentication_error', 'invalid_api_key');
    }
  });
}

/** The server, routes registered, not yet listening. */
export async function createServer(options: ServeOptions): Promise<FastifyInstance> {
  checkOptions(options);
  // Fastify takes a whole number of bytes (--max-upload-mb may be a fraction).
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: Math.max(1, Math.ceil(options.maxUploadMb * 1024 * 1024)) });
  installErrorHandler(app);
  if (options.apiKey) requireKey(app, options.apiKey);
  app.get('/health', async () => ({ status: 'ok' }));
  await app.register(inferenceRoutes, { serve: options });
  await app.register(jobRoutes, { serve: options });
  await app.register(pageRoutes);
  return app;
}

/** Create the server and listen; the URL it is reachable at (http://host:port). */
export async function startServer(options: ServeOptions): Promise<{ app: FastifyInstance; url: string; backend: BackendInfo }> {
  // Started now, so that a --device the machine cannot run is one line at start, not an error on each request.
  const backend = await initBackend(options.device ?? 'auto');
  const app = await createServer(options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { app, url: `http://${host}:${port}`, backend };
}
