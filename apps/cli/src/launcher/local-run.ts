import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisOutages } from '@lits-ddp/allreduce';
import { errorMessage } from '@lits-ddp/errors';
import { runExperiment, type ExperimentResult } from '@lits-ddp/orchestrator';
import { RedisServer, REDIS_INSTALL_HINT } from '@lits-ddp/local-services';
import type { ResolvedSpec, RunEvent } from '@lits-ddp/protocol';
import { RedisUnavailableError } from '../errors.js';
import { createDisplay, displayModeOf, silentDisplay } from '../display/run-display.js';
import { localWorkerIds, WorkerProcesses } from './worker-processes.js';

export interface LocalRunOptions {
  spec: ResolvedSpec;
  json: boolean;
  /** Folder for runs/ and the cube cache. */
  home: string;
  /** Redis to use; defaults to REDIS_URL, else an embedded redis-server. */
  redisUrl?: string;
  /** MLflow server; defaults to MLFLOW_TRACKING_URI, else a local run folder. */
  trackingUri?: string;
  /** Sees every event with the worker processes (tests kill workers from here). */
  onEvent?: (event: RunEvent, workers: WorkerProcesses) => void;
  /** Replaces the terminal display (tests). */
  quiet?: boolean;
  /**
   * Starts a lost worker again under its id (default true), so the run restarts at its size. False
   * leaves it dead, so an elastic run goes on with fewer (lits repro's shrink run).
   */
  respawnLostWorkers?: boolean;
}

export const newRunId = (): string =>
  `run-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;

/** A redis-server on a free port, for runs without REDIS_URL; a `RedisUnavailableError` saying how to install one. */
export async function startEmbeddedRedis(): Promise<RedisServer> {
  try {
    return await RedisServer.start({ install: false });
  } catch (err) {
    throw new RedisUnavailableError(
      `no REDIS_URL and no redis-server to embed (${errorMessage(err).split('\n')[0]}). Install it: ${REDIS_INSTALL_HINT} (npm run demo does it once)`,
      { cause: err },
    );
  }
}

/**
 * The local launcher behind `lits train` and `lits demo`: Redis (embedded if needed), one worker
 * process per rank of the largest generation (max(workers, max-workers): the extra ones idle until an
 * elastic run grows onto them), the coordinator core in this process, progress on stderr (NDJSON with
 * --json). The run leases only its own workers, in rank order. Ctrl-C cancels the run cleanly (MLflow
 * status KILLED).
 */
export async function launchLocalRun(opts: LocalRunOptions): Promise<ExperimentResult> {
  const { spec } = opts;
  const display = opts.quiet
    ? silentDisplay()
    : createDisplay(displayModeOf(opts.json), Math.max(spec.workers, spec['max-workers']), spec.max_epochs);
  let redisServer: RedisServer | undefined;
  let redisUrl = opts.redisUrl ?? process.env.REDIS_URL;
  const trackingUri = opts.trackingUri ?? process.env.MLFLOW_TRACKING_URI;
  if (!redisUrl) {
    redisServer = await startEmbeddedRedis();
    redisUrl = redisServer.url;
    display.log('info', `embedded redis-server at ${redisUrl}`);
  }
  const runId = newRunId();
  // An outage of the run's Redis is shown once when it begins and once when it ends, not per reconnect attempt.
  const restoreOutageLog = redisOutages.logTo({
    warn: (_fields, message) => display.log('warn', message),
    info: (_fields, message) => display.log('info', message),
  });
  const redis = redisOutages.follow(new Redis(redisUrl, { maxRetriesPerRequest: null }), 'launcher');
  const workerIds = localWorkerIds(runId, spec);
  const workers = new WorkerProcesses(workerIds, {
    redisUrl,
    engine: spec.engine,
    threads: spec['engine-threads'],
    heartbeatIntervalS: spec['heartbeat-interval-s'],
    logDir: join(opts.home, 'runs', runId, 'workers'),
  });
  const cancel = new AbortController();
  const onSigint = (): void => {
    if (cancel.signal.aborted) process.exit(130);
    display.log('warn', 'Ctrl-C: cancelling the run (again to exit at once)');
    cancel.abort('interrupted (SIGINT)');
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    workers.startAll();
    return await runExperiment({
      runId,
      spec,
      redis,
      redisUrl,
      home: opts.home,
      ...(trackingUri ? { trackingUri } : {}),
      preferredWorkers: workerIds,
      // Only its own processes: another run's idle worker in the same Redis would keep a shrink from
      // shrinking, and a growth would take it.
      exclusiveWorkers: true,
      ...(opts.respawnLostWorkers === false ? {} : { onWorkersLost: (ids) => workers.restart(ids) }),
      waitForWorkersMs: 120_000,
      onEvent: (e) => {
        display.event(e);
        opts.onEvent?.(e, workers);
      },
      onPhase: (p, d, t) => display.phase(p, d, t),
      log: (level, message) => display.log(level, message),
      signal: cancel.signal,
    });
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    display.stop();
    await workers.stopAll();
    redis.disconnect();
    restoreOutageLog();
    await redisServer?.dispose();
  }
}
