import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { WorkerPool } from '@lits-ddp/orchestrator';
import type { CapacityGate } from '../queue/capacity-gate.js';
import type { ExperimentQueue } from '../queue/experiment-queue.js';
import type { ExperimentStore } from '../queue/experiment-store.js';
import type { QueueFeeder, QueueFeederOptions } from '../queue/queue-feeder.js';
import type { CoordinatorMetrics } from './prometheus.js';

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
  /**
   * Failed authentications (401s) per client address per window, after which it gets 429 until the
   * window ends. Default 60 per minute.
   */
  authFailureLimit?: { max: number; windowMs: number };
  logger?: Logger;
  /** When stored submissions get their BullMQ jobs (defaults: 10 ms after a burst, ≤ 200 ms, sweep 5 s). */
  queueFeeder?: Omit<QueueFeederOptions, 'warn'>;
  /** How often an SSE stream polls Redis when idle, and sends a keep-alive comment. */
  sse?: { pollMs?: number; keepAliveMs?: number };
}

/** What the routes share: buildApp decorates the root instance with it, so every plugin sees `app.ctx`. */
export interface AppContext {
  options: AppOptions;
  redis: Redis;
  store: ExperimentStore;
  queue: ExperimentQueue;
  /** Adds the BullMQ jobs of stored submissions (the outbox's drain). */
  feeder: QueueFeeder;
  pool: WorkerPool;
  gate: CapacityGate;
  metrics: CoordinatorMetrics;
  /** Aborted when the app closes, so SSE streams end. */
  closing: AbortSignal;
}

declare module 'fastify' {
  interface FastifyInstance {
    ctx: AppContext;
  }
}

/** The instance routes are declared on: TypeBox schemas give the handlers their types. */
export type TypedApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** The coordinator's HTTP app, decorated with its `ctx`. */
export type CoordinatorApp = TypedApp;
