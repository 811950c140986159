import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { redisOutages } from '@lits-ddp/allreduce';
import { ExperimentProcessor, type ProcessorOptions } from '../queue/experiment-processor.js';
import type { AppOptions, CoordinatorApp } from './app-context.js';
import { buildApp } from './build-app.js';
import { createLogger } from './logger.js';

export interface CoordinatorOptions extends AppOptions {
  port: number;
  host?: string;
  /** Run the queue processor in this process (default true). */
  process?: boolean;
  processor?: Pick<
    ProcessorOptions,
    | 'concurrency'
    | 'lockDurationMs'
    | 'stalledIntervalMs'
    | 'maxStalledCount'
    | 'gate'
    | 'waitForWorkersMs'
    | 'launcher'
    | 'launcherPollMs'
  >;
}

export interface RunningCoordinator {
  app: CoordinatorApp;
  processor: ExperimentProcessor | undefined;
  url: string;
  /** Graceful stop: running experiments are handed back to the queue (their training goes on). */
  close(): Promise<void>;
}

/** The HTTP app listening, plus the queue processor: what `lits serve` runs. */
export async function startCoordinator(opts: CoordinatorOptions): Promise<RunningCoordinator> {
  const logger = opts.logger ?? createLogger();
  await mkdir(resolve(opts.home), { recursive: true });
  const app = await buildApp({ ...opts, logger });
  let processor: ExperimentProcessor | undefined;
  let processorRedis: Redis | undefined;
  if (opts.process !== false) {
    // Followed by the process's outage tracker (buildApp sends its lines to `logger`).
    processorRedis = redisOutages.follow(
      new Redis(opts.redisUrl, { maxRetriesPerRequest: null }),
      'processor',
    );
    processor = new ExperimentProcessor({
      ...opts.processor,
      connection: redisOutages.follow(
        new Redis(opts.redisUrl, { maxRetriesPerRequest: null }),
        'queue worker',
      ),
      redis: processorRedis,
      redisUrl: opts.redisUrl,
      store: app.ctx.store,
      home: resolve(opts.home),
      ...(opts.trackingUri ? { trackingUri: opts.trackingUri } : {}),
      log: logger.child({ component: 'queue' }),
      onStepTimings: (e) => app.ctx.metrics.observeStep(e),
    });
  }
  const address = await app.listen({ port: opts.port, host: opts.host ?? '127.0.0.1' });
  // Registry hygiene: workers killed without deregistering leave /v1/workers and /metrics.
  const pruner = app.ctx.pool.startPruner({
    onPruned: (ids) => logger.info({ workers: ids }, 'pruned dead workers from the registry'),
    onError: (err) => {
      // During a Redis outage the outage's own two lines say it all.
      if (!redisOutages.absorbs(err, 'api')) logger.warn({ err }, 'could not prune dead workers');
    },
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      logger.info('shutting down: handing running experiments back to the queue');
      await pruner.stop();
      await processor?.close();
      // Shutting down goes on past a connection that cannot quit (Redis down): logged, not fatal.
      const quit = (what: string, client: Redis | undefined): Promise<unknown> | undefined =>
        client?.quit().catch((err: unknown) => logger.warn({ err }, `could not close the ${what}`));
      await quit('queue worker connection', processor?.worker.opts.connection as Redis | undefined);
      await quit('processor Redis connection', processorRedis);
      await app.close();
      logger.info('stopped');
    })());
  return { app, processor, url: address, close };
}
