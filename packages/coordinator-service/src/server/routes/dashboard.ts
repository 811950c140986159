import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** apps/coordinator/dashboard, from src/server/routes or dist/server/routes alike. */
const DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/', import.meta.url));
const UPLOT_DIR = join(dirname(createRequire(import.meta.url).resolve('uplot')));

const ASSETS: Record<string, { file: string; type: string }> = {
  'app.js': { file: join(DASHBOARD_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  'style.css': { file: join(DASHBOARD_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  'uPlot.iife.min.js': { file: join(UPLOT_DIR, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { file: join(UPLOT_DIR, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/**
 * The dashboard: static files only (no data, so no token needed to load them); the page asks for
 * the API token and calls the REST API and the SSE stream with it.
 */
export const dashboardRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const cache = new Map<string, Buffer>();
  const load = (file: string): Buffer => {
    let body = cache.get(file);
    if (!body) {
      body = readFileSync(file);
      cache.set(file, body);
    }
    return body;
  };
  app.get('/', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(load(join(DASHBOARD_DIR, 'index.html'))),
  );
  app.get<{ Params: { file: string } }>(
    '/dashboard/:file',
    { schema: { hide: true } },
    async (req, reply) => {
      const asset = ASSETS[req.params.file];
      if (!asset)
        return reply
          .code(404)
          .send({ statusCode: 404, error: 'Not Found', message: `no dashboard file ${req.params.file}` });
      return reply.type(asset.type).header('cache-control', 'no-cache').send(load(asset.file));
    },
  );
};
