/**
 * The OpenAI-compatible inference routes: GET /v1/models (and /v1/models/:id), POST /v1/chat/completions
 * and POST /v1/completions, plain or streamed as server-sent events; a model's checkpoint and exports as files
 * (model-files.ts). Every body is checked against a strict
 * JSON schema (chat.ts; no type coercion, unknown fields refused); generation is gptmed's own generate()
 * with the same sampler as gptmed-generate. At most --max-concurrent generations run at once (limiter.ts);
 * a client that disconnects stops its generation at the next token; when the server closes, open
 * generations end where they are (finish_reason "length") and streams end with [DONE].
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Ajv } from 'ajv';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { generate, type Answer, type GenerateOptions, type GenerateResult, type LoadedModel } from '../generate/index.js';
import {
  INFERENCE_BODY_LIMIT,
  chatBodySchema,
  checkNeutralFields,
  conversation,
  finishReason,
  generationRequest,
  promptQuestion,
  textBodySchema,
  type ChatBody,
  type Conversation,
  type OptionsBody,
  type TextBody,
} from './chat.js';
import { ApiError } from './errors.js';
import { Limiter } from './limiter.js';
import { modelFileRoutes } from './model-files.js';
import { ModelRegistry, type ModelEntry } from './models.js';
import type { ServeOptions } from './server.js';

/** The server is closing: generations end where they are. */
class ShuttingDown extends Error {}
/** The client closed its connection: nobody is left to answer. */
class ClientGone extends Error {}

/** What a running server's inference side is doing (tests and the benchmark read it). */
export interface InferenceStats {
  running: number;
  queued: number;
  /** Tokens generated since start, over every request. */
  generatedTokens: number;
  /** Models in memory. */
  loadedModels: number;
}

const statsOf = new WeakMap<ServeOptions, () => InferenceStats>();

/** The stats of the server started with `serve` (the same object), or null. */
export function inferenceStats(serve: ServeOptions): InferenceStats | null {
  return statsOf.get(serve)?.() ?? null;
}

/** Strict: no coercion ("1" is not a number, 1 is not a boolean), no silently dropped fields. */
function strictValidator(): (args: { schema: object }) => (data: unknown) => boolean {
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false, allowUnionTypes: true });
  return ({ schema }) => ajv.compile(schema);
}

const seconds = (): number => Math.floor(Date.now() / 1000);

/** A model as /v1/models lists it: OpenAI's fields, then gptmed's, read from the manifest (no weights loaded). */
function modelObject(e: ModelEntry): object {
  const m = e.manifest;
  const s = m.trainState;
  const loss = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    id: e.id,
    object: 'model',
    created: Math.floor(Date.parse(m.createdAt) / 1000) || 0,
    owned_by: 'gptmed',
    step: m.step,
    checkpoint: e.stepDir.split(/[/\\]/).pop(),
    parameters: m.parameterCount,
    val_loss: loss(s.bestValLoss) ?? loss(s.lastValLoss),
    context_length: m.modelConfig.maxSeqLen,
    model_config: m.modelConfig,
    tokenizer: { file: m.tokenizer.file.split(/[/\\]/).pop(), sha256: m.tokenizer.sha256 },
    // The checkpoint its training started from (gptmed-train --init-from), or null.
    init_from: m.initFrom ?? null,
  };
}

type Kind = 'chat' | 'text';

interface Run {
  id: string;
  created: number;
  model: string;
  kind: Kind;
  n: number;
}

/** A choice as the final response holds it; `text` is the answer, empty for a sample never drawn (closing). */
function choiceOf(run: Run, index: number, answer: Answer | undefined): object {
  const text = answer?.text ?? '';
  const finish_reason = answer ? finishReason(answer.stop) : 'length';
  return run.kind === 'chat'
    ? { index, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason }
    : { text, index, logprobs: null, finish_reason };
}

/** Tokens generated over every sample. */
const tokensOf = (result: GenerateResult): number => result.answers.reduce((sum, a) => sum + a.generatedTokens, 0);

function usageOf(result: GenerateResult): object {
  const completion = tokensOf(result);
  return { prompt_tokens: result.promptTokens, completion_tokens: completion, total_tokens: result.promptTokens + completion };
}

/** Server-sent events in the form OpenAI's clients parse: `data: {chunk}\n\n` ..., then `data: [DONE]\n\n`. */
class EventStream {
  private readonly started = new Set<number>();

  constructor(
    private readonly res: ServerResponse,
    private readonly run: Run,
  ) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  }

  private send(data: object | string): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    this.res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  private chunk(choices: object[], extra: object = {}): void {
    const { id, created, model, kind } = this.run;
    this.send({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model, choices, ...extra });
  }

  /** A chat choice opens with a delta holding only the role. */
  private open(index: number): void {
    if (this.started.has(index)) return;
    this.started.add(index);
    if (this.run.kind === 'chat') this.chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
  }

  text(index: number, text: string): void {
    this.open(index);
    this.chunk([this.run.kind === 'chat' ? { index, delta: { content: text }, logprobs: null, finish_reason: null } : { text, index, logprobs: null, finish_reason: null }]);
  }

  finish(index: number, reason: 'stop' | 'length'): void {
    this.open(index);
    this.chunk([this.run.kind === 'chat' ? { index, delta: {}, logprobs: null, finish_reason: reason } : { text: '', index, logprobs: null, finish_reason: reason }]);
  }

  begin(): void {
    this.open(0);
  }

  usage(usage: object): void {
    this.chunk([], { usage });
  }

  error(err: ApiError): void {
    this.send({ error: { message: err.message, type: err.type, param: err.param, code: err.code } });
  }

  end(): void {
    this.send('[DONE]');
    if (!this.res.writableEnded) this.res.end();
  }
}

/** What the inference routes share: the models, the concurrency limit, the requests in flight. */
interface Inference {
  app: FastifyInstance;
  models: ModelRegistry;
  limiter: Limiter;
  /** Every generation request in flight, waiting or running: the server's close ends them. */
  inFlight: Set<AbortController>;
  generatedTokens: number;
  closing: boolean;
}

export async function inferenceRoutes(app: FastifyInstance, opts: { serve: ServeOptions }): Promise<void> {
  const { serve } = opts;
  app.setValidatorCompiler(strictValidator());
  const models = new ModelRegistry({ runsDir: serve.runsDir, checkpoints: serve.checkpoints, device: serve.device });
  const ctx: Inference = { app, models, limiter: new Limiter(serve.maxConcurrent, 4 * serve.maxConcurrent), inFlight: new Set(), generatedTokens: 0, closing: false };
  statsOf.set(serve, () => ({ ...ctx.limiter.stats, generatedTokens: ctx.generatedTokens, loadedModels: models.loadedCount }));

  app.addHook('preClose', async () => {
    ctx.closing = true;
    for (const c of ctx.inFlight) c.abort(new ShuttingDown('the server is closing'));
  });
  app.addHook('onClose', async () => {
    await models.close();
  });

  app.get('/v1/models', async () => ({ object: 'list', data: models.list().map(modelObject) }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => modelObject(models.find(request.params.id)));
  modelFileRoutes(app, models, serve.runsDir);

  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: { body: chatBodySchema }, bodyLimit: INFERENCE_BODY_LIMIT }, (request, reply) =>
    complete(ctx, 'chat', request.body, () => conversation(request.body.messages), request, reply),
  );
  app.post<{ Body: TextBody }>('/v1/completions', { schema: { body: textBodySchema }, bodyLimit: INFERENCE_BODY_LIMIT }, (request, reply) =>
    complete(ctx, 'text', request.body, () => promptQuestion(request.body.prompt), request, reply),
  );
}

/** One completion request: checked, queued for a generation slot and the model, answered whole or streamed. */
async function complete(ctx: Inference, kind: Kind, body: OptionsBody, prompt: () => Conversation, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  checkNeutralFields(body, kind);
  const { question, history } = prompt();
  const { stop, ...options } = generationRequest(body);
  const entry = ctx.models.find(body.model);
  const run: Run = { id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`, created: seconds(), model: entry.id, kind, n: body.n ?? 1 };
  const client = watchClient(ctx, reply.raw);
  let releaseSlot: (() => void) | undefined;
  let lease: Awaited<ReturnType<ModelRegistry['acquire']>> | undefined;
  try {
    releaseSlot = await takeSlot(ctx.limiter, client.signal);
    lease = await ctx.models.acquire(entry);
    const generation: GenerateOptions = { ...options, history, stop, signal: client.signal };
    if (!body.stream) return await answerWhole(ctx, run, lease.lm, question, generation);
    return await answerStreamed(ctx, run, lease.lm, question, generation, body.stream_options?.include_usage ?? false, request, reply);
  } finally {
    client.done();
    lease?.release();
    releaseSlot?.();
  }
}

/**
 * A request in flight, aborted when its client closes the connection or (preClose) the server closes;
 * `done` stops watching it.
 */
function watchClient(ctx: Inference, res: ServerResponse): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const onClose = (): void => {
    if (!res.writableEnded) controller.abort(new ClientGone('the client closed the connection'));
  };
  res.on('close', onClose);
  // A keep-alive connection whose last response ends while the server closes would hold the close up
  // until it times out: let it go as soon as it is idle.
  res.once('finish', () => {
    if (ctx.closing) setImmediate(() => ctx.app.server.closeIdleConnections());
  });
  ctx.inFlight.add(controller);
  return {
    signal: controller.signal,
    done: () => {
      res.off('close', onClose);
      ctx.inFlight.delete(controller);
    },
  };
}

/** A generation slot (--max-concurrent); a 503 when the server closes while the request waits for one. */
async function takeSlot(limiter: Limiter, signal: AbortSignal): Promise<() => void> {
  try {
    return await limiter.acquire(signal);
  } catch (err) {
    if (err instanceof ShuttingDown) throw new ApiError(503, 'the server is closing; retry on another or later', null, 'server_error', 'shutting_down');
    throw err;
  }
}

/** The whole response at once: one choice per sample (`n`). */
async function answerWhole(ctx: Inference, run: Run, lm: LoadedModel, question: string, options: GenerateOptions): Promise<object> {
  const result = await generate(lm, question, options);
  ctx.generatedTokens += tokensOf(result);
  const choices = Array.from({ length: run.n }, (_, i) => choiceOf(run, i, result.answers[i]));
  return { id: run.id, object: run.kind === 'chat' ? 'chat.completion' : 'text_completion', created: run.created, model: run.model, choices, usage: usageOf(result), system_fingerprint: null };
}

/** The response as server-sent events, text as it settles; an error after the headers goes into the stream. */
async function answerStreamed(
  ctx: Inference,
  run: Run,
  lm: LoadedModel,
  question: string,
  options: GenerateOptions,
  includeUsage: boolean,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const stream = new EventStream(reply.raw, run);
  reply.hijack();
  stream.begin();
  let result: GenerateResult;
  try {
    result = await generate(lm, question, {
      ...options,
      onText: (text, sample) => stream.text(sample, text),
      onAnswer: (answer, sample) => stream.finish(sample, finishReason(answer.stop)),
    });
  } catch (err) {
    // Headers are out: the error goes into the stream, in OpenAI's shape.
    request.log.error(err);
    stream.error(err instanceof ApiError ? err : new ApiError(500, `generation failed: ${(err as Error).message}`, null, 'server_error'));
    stream.end();
    return reply;
  }
  ctx.generatedTokens += tokensOf(result);
  for (let i = result.answers.length; i < run.n; i++) stream.finish(i, 'length');
  if (includeUsage) stream.usage(usageOf(result));
  stream.end();
  return reply;
}
