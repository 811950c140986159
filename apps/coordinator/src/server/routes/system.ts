import { workerKeys } from '@lits-ddp/protocol';
import type { AppContext, TypedApp } from '../build-app.js';
import { ErrorReply, Health, WorkersReply } from '../schemas.js';

async function mlflowReachable(uri: string): Promise<string> {
  try {
    const res = await fetch(`${uri.replace(/\/$/, '')}/health`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? 'ok' : `HTTP ${res.status}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Health and readiness (open), workers and Prometheus metrics (behind the token). */
export function registerSystemRoutes(
  app: TypedApp,
  ctx: AppContext,
  part: 'open' | 'protected' = 'open',
): void {
  if (part === 'open') {
    app.get(
      '/healthz',
      {
        config: { rateLimit: false },
        schema: { tags: ['system'], summary: 'Liveness', response: { 200: Health } },
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
          response: { 200: Health, 503: Health },
        },
      },
      async (_req, reply) => {
        const checks: Record<string, string> = {};
        checks.redis = await ctx.redis
          .ping()
          .then((r) => (r === 'PONG' ? 'ok' : r))
          .catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
        checks.mlflow = ctx.options.trackingUri
          ? await mlflowReachable(ctx.options.trackingUri)
          : 'not configured (local run folders)';
        const ready = checks.redis === 'ok' && (checks.mlflow === 'ok' || !ctx.options.trackingUri);
        return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
      },
    );
    return;
  }

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
}
