/** The training jobs routes (being written). */
import type { FastifyInstance } from 'fastify';
import type { ServeOptions } from './server.js';

export async function jobRoutes(_app: FastifyInstance, _opts: { serve: ServeOptions }): Promise<void> {}
