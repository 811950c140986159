import { createHash, randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { WorkerPool } from '@lits-ddp/orchestrator';
import { CapacityGate } from '../queue/capacity-gate.js';
import { ExperimentQueue } from '../queue/experiment-queue.js';
import { ExperimentStore } from '../queue/experiment-store.js';
import { CoordinatorMetrics } from './prometheus.js';
import { registerDashboard } from './routes/dashboard.js';
import { registerEventRoutes } from './routes/events.js';
import { registerExperimentRoutes } from './routes/experiments.js';
import { registerSystemRoutes } from './routes/system.js';

export interface AppOptions {
  redisUrl: string;
  /** Accepted bearer tokens. Empty means no auth, which needs `allowNoAuth`. */
  tokens: readonly string[];
  allowNoAuth?: boolean;
  /** Data-set paths of submitted specs must lie inside this folder. */
  dataRoot: string;
  /** The shared folder (runs/, cache/) the workers also see. */
  home: string;
  trackingUri?: string;
  /** Largest accepted request body. Default 256 KiB. */
  bodyLimit?: number;
  /** Requests per window per token (or per address without one). Default 1200 per minute. */
  rateLimit?: { max: number; timeWindowMs: number };
  logger?: Logger;
  /** How often an SSE stream polls Redis when idle, and sends a keep-alive comment. */
  sse?: { pollMs?: number; keepAliveMs?: number };
}

export interface AppContext {
  options: AppOptions;
  redis: Redis;
  store: ExperimentStore;
  queue: ExperimentQueue;
  pool: WorkerPool;
  gate: CapacityGate;
  metrics: CoordinatorMetrics;
  /** Aborted when the app closes, so SSE streams end. */
  closing: AbortSignal;
}

export type CoordinatorApp = FastifyInstance & { ctx: AppContext };

/** The instance routes are declared on: TypeBox schemas give the handlers their types. */
export type TypedApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** pino with secrets redacted: authorization headers, cookies, tokens and passwords at any depth we log. */
export function createLogger(
  level = process.env.LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      level,
      base: { service: 'lits-coordinator' },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'headers.authorization',
          'authorization',
          '*.token',
          '*.password',
          '*.tokens',
          'token',
          'tokens',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/**
 * Without a listener ioredis prints each failed reconnect to stderr (and BullMQ's queue does the
 * same): log it once per outage instead, as JSON like every other line.
 */
function logConnectionErrors(
  emitter: { on(event: 'error' | 'ready', fn: (err?: Error) => void): unknown },
  log: Logger,
  client: string,
): void {
  let last = '';
  emitter.on('error', (err) => {
    if (!err || err.message === last) return;
    last = err.message;
    log.warn({ err, client }, 'Redis connection error');
  });
  emitter.on('ready', () => {
    if (last) log.info({ client }, 'Redis connection back');
    last = '';
  });
}

const tokenKey = (header: string | undefined): string | undefined => {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  return m
    ? createHash('sha256')
        .update(m[1] as string)
        .digest('hex')
        .slice(0, 16)
    : undefined;
};

/**
 * The coordinator's HTTP app (no listening, no queue processing: see startCoordinator). Every
 * route validates its input with TypeBox schemas and appears in the OpenAPI document at /docs/json.
 */
export async function buildApp(options: AppOptions): Promise<CoordinatorApp> {
  if (options.tokens.length === 0 && !options.allowNoAuth)
    throw new Error(
      'no API tokens: set LITS_API_TOKEN (comma-separated) or a token file, or allow no auth explicitly',
    );
  const logger = options.logger ?? createLogger();
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 2, enableAutoPipelining: true });
  const queueConnection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const queue = new ExperimentQueue(queueConnection);
  logConnectionErrors(redis, logger, 'api');
  logConnectionErrors(queueConnection, logger, 'queue');
  queue.queue.on('error', (err: Error) => logger.debug({ err }, 'queue error'));
  const store = new ExperimentStore(redis);
  const pool = new WorkerPool(redis);
  const closing = new AbortController();
  const ctx: AppContext = {
    options,
    redis,
    store,
    queue,
    pool,
    gate: new CapacityGate(redis, pool),
    metrics: new CoordinatorMetrics({ queue, store, pool }),
    closing: closing.signal,
  };

  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    // Ids reach 128 characters and model file names 255: the schemas say so (400), not a 414 before them.
    routerOptions: { maxParamLength: 256 },
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, useDefaults: true, coerceTypes: 'array' } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpSeconds.observe(
      {
        method: req.method,
        route: req.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
  app.addHook('preClose', async () => closing.abort('closing'));
  app.addHook('onClose', async () => {
    await queue.close().catch(() => undefined);
    await (queue.queue.opts.connection as Redis).quit().catch(() => undefined);
    await redis.quit().catch(() => undefined);
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      const where = err.validationContext ?? 'request';
      // One message per field; a union of literals reports every alternative, so say it once.
      const byPath = new Map<string, string>();
      for (const v of err.validation) {
        const missing = (v.params as { missingProperty?: string }).missingProperty;
        const path = `${v.instancePath}${missing ? `/${missing}` : ''}` || '/';
        const message =
          v.keyword === 'const' || v.keyword === 'anyOf'
            ? 'must be one of the allowed values'
            : (v.message ?? 'invalid');
        if (!byPath.has(path) || v.keyword === 'anyOf') byPath.set(path, `${where}: ${message}`);
      }
      const errors = [...byPath].map(([path, message]) => ({ path, message }));
      return reply.code(400).send({
        statusCode: 400,
        error: 'Bad Request',
        message: errors.map((e) => `${e.path} ${e.message}`).join('; '),
        errors,
      });
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status < 500)
      return reply
        .code(status)
        .send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', message: err.message });
    req.log.error({ err }, 'request failed');
    const redisDown = /connect|ECONNREFUSED|Connection is closed|max retries/i.test(err.message);
    const code = redisDown ? 503 : 500;
    return reply.code(code).send({
      statusCode: code,
      error: STATUS_CODES[code] as string,
      message: redisDown ? 'Redis is unreachable; retry later' : `internal error (request ${req.id})`,
    });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      statusCode: 404,
      error: 'Not Found',
      message: `no route ${req.method} ${req.url.split('?')[0]}`,
    }),
  );

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
  await app.register(rateLimit, {
    global: true,
    max: options.rateLimit?.max ?? 1200,
    timeWindow: options.rateLimit?.timeWindowMs ?? 60_000,
    keyGenerator: (req) => tokenKey(req.headers.authorization) ?? req.ip,
  });

  await app.register(async (open) => {
    registerSystemRoutes(open.withTypeProvider<TypeBoxTypeProvider>(), ctx);
    registerDashboard(open.withTypeProvider<TypeBoxTypeProvider>());
  });
  await app.register(async (scope) => {
    if (options.tokens.length > 0) {
      const bearerAuth = (await import('@fastify/bearer-auth')).default;
      await scope.register(bearerAuth, {
        keys: new Set(options.tokens),
        addHook: 'onRequest',
        verifyErrorLogLevel: 'warn',
        errorResponse: (err) =>
          ({ statusCode: 401, error: 'Unauthorized', message: err.message }) as { error: string },
      });
    }
    registerExperimentRoutes(scope.withTypeProvider<TypeBoxTypeProvider>(), ctx);
    registerEventRoutes(scope.withTypeProvider<TypeBoxTypeProvider>(), ctx);
    registerSystemRoutes(scope.withTypeProvider<TypeBoxTypeProvider>(), ctx, 'protected');
  });
  return Object.assign(app as unknown as FastifyInstance, { ctx }) as CoordinatorApp;
}
