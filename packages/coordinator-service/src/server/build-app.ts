import { createHash, randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { redisOutages } from '@lits-ddp/allreduce';
import { WorkerPool } from '@lits-ddp/orchestrator';
import { CoordinatorConfigError } from '../errors.js';
import { CapacityGate } from '../queue/capacity-gate.js';
import { ExperimentQueue } from '../queue/experiment-queue.js';
import { ExperimentStore } from '../queue/experiment-store.js';
import { QueueFeeder } from '../queue/queue-feeder.js';
import type { AppContext, AppOptions, CoordinatorApp, TypedApp } from './app-context.js';
import { AuthFailureLimiter, limitFailedAuth } from './auth-failures.js';
import { errorReplies, frameworkErrorReply, notFoundReply } from './error-replies.js';
import { parseJsonBody } from './json-body.js';
import { createLogger } from './logger.js';
import { CoordinatorMetrics } from './prometheus.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { eventRoutes } from './routes/events.js';
import { experimentRoutes } from './routes/experiments.js';
import { healthRoutes, monitoringRoutes } from './routes/system.js';

const tokenKey = (header: string | undefined): string | undefined => {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  return m
    ? createHash('sha256')
        .update(m[1] as string)
        .digest('hex')
        .slice(0, 16)
    : undefined;
};

/** The Redis connections, store, queue and metrics the routes share, and how to close them. */
function createContext(
  options: AppOptions,
  logger: Logger,
): { ctx: AppContext; close: () => Promise<void>; abort: () => void } {
  // A Redis outage is logged once for all of the process's connections, when it begins and when it ends.
  const restoreOutageLog = redisOutages.logTo(logger);
  const redis = redisOutages.follow(
    new Redis(options.redisUrl, { maxRetriesPerRequest: 2, enableAutoPipelining: true }),
    'api',
  );
  const queueConnection = redisOutages.follow(
    new Redis(options.redisUrl, { maxRetriesPerRequest: null }),
    'queue',
  );
  const queue = new ExperimentQueue(queueConnection);
  queue.queue.on('error', (err: Error) => logger.debug({ err }, 'queue error'));
  const store = new ExperimentStore(redis);
  const feeder = new QueueFeeder(redis, queue, {
    ...options.queueFeeder,
    warn: (message) => logger.warn(message),
  });
  // What a coordinator that died left in the outbox gets its jobs now.
  void feeder.drain();
  const pool = new WorkerPool(redis, { warn: (message) => logger.warn(message) });
  const closing = new AbortController();
  const ctx: AppContext = {
    options,
    redis,
    store,
    queue,
    feeder,
    pool,
    gate: new CapacityGate(redis, pool),
    metrics: new CoordinatorMetrics({ queue, feeder, store, pool }),
    closing: closing.signal,
  };
  // Closing goes on past a failure (a Redis that is down refuses QUIT): each one is logged.
  const closeOrWarn = async (what: string, close: () => Promise<unknown>): Promise<void> => {
    await close().catch((err: unknown) => logger.warn({ err }, `could not close the ${what}`));
  };
  const close = async (): Promise<void> => {
    await closeOrWarn('queue feeder', () => feeder.close());
    await closeOrWarn('queue', () => queue.close());
    await closeOrWarn('queue connection', () => queueConnection.quit());
    await closeOrWarn('Redis connection', () => redis.quit());
    restoreOutageLog();
  };
  return { ctx, close, abort: () => closing.abort('closing') };
}

/** Request ids, per-route timings, and the order of shutting down: streams end, then connections close. */
function addLifecycleHooks(
  app: TypedApp,
  lifecycle: { close: () => Promise<void>; abort: () => void },
): void {
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    app.ctx.metrics.httpSeconds.observe(
      {
        method: req.method,
        route: req.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
  app.addHook('preClose', async () => lifecycle.abort());
  app.addHook('onClose', async () => lifecycle.close());
}

/** The OpenAPI document (/docs/json) with its UI (/docs), and the rate limit of every route. */
async function registerDocsAndLimits(app: TypedApp, options: AppOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'lits-ddp coordinator',
        version: '0.1.0',
        description: 'Submit, follow and cancel data-parallel training experiments.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // The configured tokens' keys, hashed once instead of on every request that carries one.
  const knownKeys = new Map(options.tokens.map((t) => [`Bearer ${t}`, tokenKey(`Bearer ${t}`)]));
  await app.register(rateLimit, {
    global: true,
    max: options.rateLimit?.max ?? 1200,
    timeWindow: options.rateLimit?.timeWindowMs ?? 60_000,
    keyGenerator: (req) => {
      const header = req.headers.authorization;
      return (header !== undefined ? knownKeys.get(header) : undefined) ?? tokenKey(header) ?? req.ip;
    },
  });
}

/** The routes behind the bearer token (when there are tokens): its hook covers only this scope. */
async function protectedRoutes(scope: TypedApp, options: AppOptions): Promise<void> {
  const { tokens } = options;
  if (tokens.length > 0) {
    const { max, windowMs } = options.authFailureLimit ?? { max: 60, windowMs: 60_000 };
    limitFailedAuth(scope, new AuthFailureLimiter(max, windowMs));
    const bearerAuth = (await import('@fastify/bearer-auth')).default;
    await scope.register(bearerAuth, {
      keys: new Set(tokens),
      addHook: 'onRequest',
      verifyErrorLogLevel: 'warn',
      errorResponse: (err) =>
        ({ statusCode: 401, error: 'Unauthorized', message: err.message }) as { error: string },
    });
  }
  await scope.register(experimentRoutes);
  await scope.register(eventRoutes);
  await scope.register(monitoringRoutes);
}

/**
 * The coordinator's HTTP app (no listening, no queue processing: see startCoordinator). Every
 * route validates its input with TypeBox schemas and appears in the OpenAPI document at /docs/json.
 * The routes are plugins that find the shared state in `app.ctx`.
 */
export async function buildApp(options: AppOptions): Promise<CoordinatorApp> {
  if (options.tokens.length === 0 && !options.allowNoAuth)
    throw new CoordinatorConfigError(
      'no API tokens: set LITS_API_TOKEN (comma-separated) or a token file, or allow no auth explicitly',
    );
  const logger = options.logger ?? createLogger();
  const { ctx, close, abort } = createContext(options, logger);

  const app = Fastify({
    // pino's Logger is what Fastify logs through; typed as Fastify's own so the instance is a TypedApp.
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    // Ids reach 128 characters and model file names 255: the schemas say so (400), not a 414 before them.
    routerOptions: { maxParamLength: 256 },
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    // 414 (a path part too long) and 400 (broken percent-encoding) in the documented format.
    frameworkErrors: frameworkErrorReply,
    ajv: { customOptions: { removeAdditional: false, useDefaults: true, coerceTypes: 'array' } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.decorate('ctx', ctx);
  addLifecycleHooks(app, { close, abort });
  app.setErrorHandler(errorReplies(ctx.redis));
  app.setNotFoundHandler(notFoundReply);
  // JSON is the only body the API reads: text/plain is 415 like any other type, a bad body a 400 saying why.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJsonBody);

  await registerDocsAndLimits(app, options);
  await app.register(healthRoutes);
  await app.register(dashboardRoutes);
  await app.register(async (scope) => protectedRoutes(scope, options));
  return app;
}
