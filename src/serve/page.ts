/**
 * The web page at `/`: web/index.html and web/style.css, the page's scripts (src/web, compiled to
 * dist/web) under /app/, and uPlot (the charts) under /vendor/uplot/, all from this package: the page
 * makes no request outside the server and works offline. The page uses only the documented /v1 routes.
 * Static files need no key; every /v1 call the page makes sends it.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { packageRoot } from '../common/paths.js';

const require = createRequire(import.meta.url);

export async function pageRoutes(app: FastifyInstance): Promise<void> {
  const uplotDir = path.dirname(require.resolve('uplot/dist/uPlot.esm.js'));
  await app.register(fastifyStatic, { root: path.join(packageRoot, 'web'), prefix: '/', index: 'index.html', wildcard: false });
  await app.register(fastifyStatic, { root: path.join(packageRoot, 'dist', 'web'), prefix: '/app/', decorateReply: false });
  await app.register(fastifyStatic, { root: uplotDir, prefix: '/vendor/uplot/', decorateReply: false, allowedPath: (p) => /^\/uPlot\.(esm\.js|min\.css)$/.test(p) });
}
