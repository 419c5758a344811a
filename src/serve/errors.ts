/**
 * Errors in OpenAI's shape, `{ error: { message, type, param, code } }`, for every route: a client built
 * for OpenAI's API (the official `openai` package) reads them as it reads OpenAI's own. Requests that
 * fail validation are 400 naming the field; nothing reaches the client as a 500 with a stack trace.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { UserError } from '../common/errors.js';

export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

/** A request the server refuses: the status, and the body's fields. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly param: string | null = null,
    readonly type: ApiErrorType = 'invalid_request_error',
    readonly code: string | null = null,
    /** Extra response headers (Retry-After for a 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const notFound = (what: string, param: string | null = null): ApiError => new ApiError(404, what, param, 'not_found_error', 'not_found');

export function errorBody(message: string, type: ApiErrorType, param: string | null, code: string | null): object {
  return { error: { message, type, param, code } };
}

/** The field a JSON-schema validation error is about: "temperature", "messages[0].role", or the missing one. */
function validationParam(err: FastifyError): string | null {
  const v = err.validation?.[0];
  if (!v) return null;
  const missing = (v.params as { missingProperty?: string; additionalProperty?: string } | undefined) ?? {};
  const parts = v.instancePath.split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`));
  const leaf = missing.missingProperty ?? missing.additionalProperty;
  if (leaf) parts.push(`.${leaf}`);
  return parts.join('').replace(/^\./, '') || null;
}

/** One error handler for the whole server: ApiError and UserError as 4xx, validation as 400, the rest as 500 without details. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).headers(err.headers).send(errorBody(err.message, err.type, err.param, err.code));
    }
    if (err.validation) {
      const param = validationParam(err);
      const where = err.validationContext === 'querystring' ? 'query' : 'body';
      const message = `${param ?? where}: ${err.validation[0].message ?? 'invalid'}`;
      return reply.code(400).send(errorBody(message, 'invalid_request_error', param, 'invalid_value'));
    }
    if (err instanceof UserError) return reply.code(400).send(errorBody(err.message, 'invalid_request_error', null, null));
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own: a body that is not JSON (400), too large (413), an unsupported content type (415).
      return reply.code(status).send(errorBody(err.message, 'invalid_request_error', null, err.code ?? null));
    }
    request.log.error(err);
    return reply.code(500).send(errorBody('internal error (the server log has the details)', 'server_error', null, null));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody(`no route ${request.method} ${request.url.split('?')[0]}`, 'not_found_error', null, 'not_found'));
  });
}
