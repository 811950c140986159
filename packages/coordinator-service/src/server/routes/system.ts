import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import { errorMessage } from '@lits-ddp/errors';
import { HealthReply, workerKeys, WorkersReply } from '@lits-ddp/protocol';
import { ErrorReply } from '../schemas.js';

async function mlflowReachable(uri: string): Promise<string> {
  try {
    const res = await fetch(`${uri.replace(/\/$/, '')}/health`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? 'ok' : `HTTP ${res.status}`;
  } catch (err) {
    // The reason is the answer: /readyz reports it.
    return errorMessage(err);
  }
}

/** PING with a deadline: a Redis that is down answers in about two seconds, never hangs the probe. */
async function redisReachable(redis: Redis): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('no answer within 2 s'), 2000);
  });
  try {
    return await Promise.race([redis.ping().then((r) => (r === 'PONG' ? 'ok' : r)), deadline]);
  } catch (err) {
    return errorMessage(err);
  } finally {
    clearTimeout(timer);
  }
}

/** Liveness and readiness: open (probes carry no token) and never rate-limited. */
export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { ctx } = app;
  app.get(
    '/healthz',
    {
      config: { rateLimit: false },
      schema: { tags: ['system'], summary: 'Liveness', response: { 200: HealthReply } },
    },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      config: { rateLimit: false },
      schema: {
        tags: ['system'],
        summary: 'Readiness: Redis and MLflow reachable',
        response: { 200: HealthReply, 503: HealthReply },
      },
    },
    async (_req, reply) => {
      const [redis, mlflow] = await Promise.all([
        redisReachable(ctx.redis),
        ctx.options.trackingUri ? mlflowReachable(ctx.options.trackingUri) : undefined,
      ]);
      const checks = { redis, mlflow: mlflow ?? 'not configured (local run folders)' };
      const down = [
        ...(redis === 'ok' ? [] : [`Redis is unreachable (${redis})`]),
        ...(mlflow === undefined || mlflow === 'ok' ? [] : [`MLflow is unreachable (${mlflow})`]),
      ];
      if (down.length === 0) return reply.code(200).send({ status: 'ready', checks });
      return reply.code(503).send({ status: 'not ready', message: down.join('; '), checks });
    },
  );
};

/** Registered workers and Prometheus metrics: behind the token. */
export const monitoringRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { ctx } = app;
  app.get(
    '/v1/workers',
    {
      schema: {
        tags: ['workers'],
        summary: 'Registered workers: engine, device, state, heartbeat age',
        security: [{ bearer: [] }],
        response: { 200: WorkersReply, 401: ErrorReply, 429: ErrorReply },
      },
    },
    async () => {
      const workers = await ctx.pool.list();
      const leases = workers.length
        ? await ctx.redis.mget(...workers.map((w) => workerKeys.lease(w.info.id)))
        : [];
      return {
        workers: workers.map((w, i) => ({
          id: w.info.id,
          host: w.info.host,
          engine: w.info.engine,
          ...(w.info.engineThreads ? { engineThreads: w.info.engineThreads } : {}),
          ...(w.info.libtensorflow ? { libtensorflow: w.info.libtensorflow } : {}),
          ...(w.info.engineFallback ? { engineFallback: w.info.engineFallback } : {}),
          device: w.info.device,
          state: w.heartbeatAgeMs === undefined ? 'dead' : w.info.state,
          ...(w.info.runId ? { runId: w.info.runId } : {}),
          ...(w.info.rank !== undefined ? { rank: w.info.rank } : {}),
          ...(leases[i] ? { leasedTo: leases[i] as string } : {}),
          ...(w.heartbeatAgeMs !== undefined
            ? {
                heartbeatAgeMs: w.heartbeatAgeMs,
                lastHeartbeatAt: new Date(Date.now() - w.heartbeatAgeMs).toISOString(),
              }
            : {}),
          startedAt: new Date(w.info.startedAt).toISOString(),
        })),
      };
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics: queue depth, experiments by status, workers, step times',
        security: [{ bearer: [] }],
      },
    },
    async (_req, reply) => {
      reply.type(ctx.metrics.registry.contentType);
      return ctx.metrics.registry.metrics();
    },
  );
};
