/** The OpenAI-compatible inference routes (being written). */
import type { FastifyInstance } from 'fastify';
import type { ServeOptions } from './server.js';

export async function inferenceRoutes(_app: FastifyInstance, _opts: { serve: ServeOptions }): Promise<void> {}
