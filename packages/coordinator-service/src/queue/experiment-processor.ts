import { randomBytes } from 'node:crypto';
import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { errorMessage } from '@lits-ddp/errors';
import { decodeJson, experimentKeys, runKeys, type RunEvent } from '@lits-ddp/protocol';
import {
  runExperiment,
  type ExperimentOptions,
  type ExperimentResult,
  publishEvent,
  RunLedger,
  loadRunRecord,
  RunDetachedError,
  WorkerPool,
  type ExperimentLauncher,
} from '@lits-ddp/orchestrator';
import { CapacityGate, type GateOptions } from './capacity-gate.js';
import { bullPrefix, QUEUE_NAME, type ExperimentJobData } from './experiment-queue.js';
import type { ExperimentRecord, ExperimentStore } from './experiment-store.js';
import { PlanRanks } from './stored-schemas.js';

export interface ProcessorOptions {
  connection: ConnectionOptions;
  /** Non-blocking client for records, events and leases. */
  redis: Redis;
  redisUrl: string;
  store: ExperimentStore;
  /** Shared folder: runs/<id>/ and the cube cache. */
  home: string;
  trackingUri?: string;
  log: Logger;
  /** Experiments supervised (or waiting for workers) at once. Default 16. */
  concurrency?: number;
  /**
   * BullMQ lock: renewed every lockDurationMs/2 while the event loop runs (the processor only
   * supervises, so it always does), for runs of any length. A dead coordinator's job is taken up
   * again after the lock lapses and a stalled check (stalledIntervalMs) sees it.
   */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Coordinator deaths one experiment survives. Default 20. */
  maxStalledCount?: number;
  gate?: GateOptions;
  /** How long a restarting run waits for free workers. Default 10 min. */
  waitForWorkersMs?: number;
  onStepTimings?: (event: Extract<RunEvent, { type: 'progress' }>) => void;
  /**
   * Starts each experiment's own workers (k8s mode: one Indexed Job per experiment) instead of
   * waiting for registered ones; the capacity gate is then the cluster's scheduler.
   */
  launcher?: ExperimentLauncher;
  /** How often the launcher is asked whether the workers still can run. Default 5 s. */
  launcherPollMs?: number;
}

const OWNER_TTL_MS = 15_000;
const RENEW_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The BullMQ worker of the `experiments` queue. Its processor only supervises: it waits for
 * capacity, then runs the coordinator core, which leases `lits worker` processes and follows them.
 * On shutdown it detaches (training goes on) and hands the job back to the queue at once; after a
 * crash the job stalls and is taken up again, and the core adopts the run.
 */
export class ExperimentProcessor {
  readonly worker: Worker<ExperimentJobData>;
  readonly gate: CapacityGate;
  private readonly detach = new AbortController();
  private readonly instance = randomBytes(6).toString('hex');
  private readonly startedAt = Date.now();

  constructor(private readonly opts: ProcessorOptions) {
    const pool = new WorkerPool(opts.redis, { warn: (message) => opts.log.warn(message) });
    this.gate = new CapacityGate(opts.redis, pool, opts.gate);
    this.worker = new Worker<ExperimentJobData>(QUEUE_NAME, (job, token) => this.process(job, token), {
      connection: opts.connection,
      prefix: bullPrefix(),
      concurrency: opts.concurrency ?? 16,
      lockDuration: opts.lockDurationMs ?? 60_000,
      stalledInterval: opts.stalledIntervalMs ?? 30_000,
      maxStalledCount: opts.maxStalledCount ?? 20,
      autorun: true,
    });
    this.worker.on('error', (err) => opts.log.error({ err }, 'queue worker error'));
    this.worker.on('failed', (job, err) =>
      opts.log.error({ runId: job?.data.id, err }, 'experiment job failed'),
    );
  }

  /** Stops taking jobs; running experiments detach and go back to the queue for the next coordinator. */
  async close(timeoutMs = 20_000): Promise<void> {
    this.detach.abort('coordinator shutting down');
    const closing = this.worker.close();
    const timedOut = await Promise.race([closing.then(() => false), sleep(timeoutMs).then(() => true)]);
    if (timedOut) {
      this.opts.log.warn('queue worker did not close in time; forcing');
      await this.worker.close(true);
    }
  }

  private async process(job: Job<ExperimentJobData>, token?: string): Promise<string> {
    const { id } = job.data;
    const log = this.opts.log.child({ runId: id, jobId: job.id });
    const rec = await this.opts.store.get(id);
    if (!rec) {
      log.warn('job without an experiment record; dropped');
      return 'missing';
    }
    if (rec.done) return rec.status;
    const owner = `${this.instance}:${token ?? ''}`;
    // One supervisor per run, even if a stalled job were handed out while its old processor lives on.
    while ((await this.opts.redis.set(experimentKeys.owner(id), owner, 'PX', OWNER_TTL_MS, 'NX')) !== 'OK') {
      if (this.detach.signal.aborted) return this.handBack(job, token);
      await sleep(1000);
    }
    const renew = setInterval(() => {
      // A missed renewal is retried at the next tick; several in a row let another processor in.
      this.opts.redis
        .eval(RENEW_OWNER, 1, experimentKeys.owner(id), owner, OWNER_TTL_MS)
        .catch((err: unknown) => log.warn({ err }, 'could not renew the ownership of the run'));
    }, OWNER_TTL_MS / 5);
    try {
      return await this.supervise(job, token, rec, log);
    } finally {
      clearInterval(renew);
      await this.opts.redis.eval(
        `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
        1,
        experimentKeys.owner(id),
        owner,
      );
    }
  }

  private async supervise(
    job: Job<ExperimentJobData>,
    token: string | undefined,
    rec: ExperimentRecord,
    log: Logger,
  ): Promise<string> {
    const { id, spec } = rec;
    const { store, redis } = this.opts;
    const started = (await loadRunRecord(redis, id)) !== undefined;
    if (!started && this.opts.launcher) {
      if (await redis.exists(runKeys.cancel(id))) return this.cancelledBeforeStart(id, log);
      await store.update(id, { status: 'preparing', startedAt: Date.now() });
    } else if (!started) {
      const admitted = await this.gate.admit(
        { id, needs: spec.workers, priority: rec.priority, submittedAt: rec.submittedAt },
        async () => this.detach.signal.aborted || (await redis.exists(runKeys.cancel(id))) === 1,
      );
      if (admitted === 'stopped') {
        if (this.detach.signal.aborted) return this.handBack(job, token);
        return this.cancelledBeforeStart(id, log);
      }
      await store.update(id, { status: 'preparing', startedAt: Date.now() });
      log.info({ workers: spec.workers }, 'admitted');
    } else log.info('taking over a run whose coordinator stopped');

    const ledger = new RunLedger();
    const launched = this.opts.launcher ? this.launch(rec, log) : undefined;
    let result: ExperimentResult;
    try {
      result = await runExperiment({
        ...launched?.runOptions,
        runId: id,
        spec,
        redis,
        redisUrl: this.opts.redisUrl,
        home: this.opts.home,
        ...(this.opts.trackingUri ? { trackingUri: this.opts.trackingUri } : {}),
        waitForWorkersMs: this.opts.waitForWorkersMs ?? 600_000,
        detach: this.detach.signal,
        onEvent: (event, streamId) => this.onEvent(id, ledger, event, streamId, log),
        log: (level, message) => log[level](message),
      });
    } catch (err) {
      if (err instanceof RunDetachedError) return await this.handBack(job, token);
      throw err;
    } finally {
      launched?.stop();
      await this.gate.release(id);
    }
    // A cancelled or failed run's Job must not start pods later; a finished one goes after its TTL.
    if (result.status !== 'finished' && this.opts.launcher)
      await this.opts.launcher
        .remove(id)
        .catch((err: unknown) => log.warn({ err }, 'could not remove the workers'));
    await store.update(id, {
      status: result.status,
      endedAt: Date.now(),
      restarts: result.restarts,
      ...(result.workers ? { workers: result.workers } : {}),
      ...(result.latestMetrics ? { latestMetrics: result.latestMetrics } : {}),
      ...(result.testMetrics ? { testMetrics: result.testMetrics } : {}),
      ...(result.modelPath ? { modelPath: result.modelPath } : {}),
      ...(result.error ? { error: result.error } : {}),
      done: true,
    });
    log.info({ status: result.status, restarts: result.restarts, tracking: result.tracker.runId }, 'done');
    return result.status;
  }

  private async cancelledBeforeStart(id: string, log: Logger): Promise<string> {
    const { store, redis } = this.opts;
    const reason = (await redis.get(runKeys.cancel(id))) ?? 'cancelled';
    await store.update(id, { status: 'cancelled', endedAt: Date.now(), done: true, error: reason });
    await publishEvent(redis, id, { type: 'status', status: 'cancelled', message: reason, restarts: 0 });
    log.info({ reason }, 'cancelled before it started');
    return 'cancelled';
  }

  /**
   * Binds the run to the experiment's own workers, which the launcher starts once the data is
   * prepared (so no GPU is held while it is; after a takeover the start is a no-op), and watches
   * them: when they cannot run, or cannot be started, the run fails with the launcher's reason.
   */
  private launch(
    rec: ExperimentRecord,
    log: Logger,
  ): {
    runOptions: Pick<ExperimentOptions, 'preferredWorkers' | 'exclusiveWorkers' | 'fail' | 'onPhase'>;
    stop: () => void;
  } {
    const launcher = this.opts.launcher as ExperimentLauncher;
    const { id, spec } = rec;
    const fail = new AbortController();
    const warned = new Set<string>();
    let poll: NodeJS.Timeout | undefined;
    const watch = async (): Promise<void> => {
      const failure = await launcher.failure(id);
      if (failure) {
        log.error(failure);
        fail.abort(failure);
        clearInterval(poll);
        return;
      }
      for (const w of await launcher.warnings(id)) {
        if (warned.has(w)) continue;
        warned.add(w);
        log.warn(w);
      }
    };
    const start = async (): Promise<void> => {
      try {
        await launcher.ensure({
          experimentId: id,
          workers: spec.workers,
          maxRestarts: spec['max-restarts'],
          engineThreads: spec['engine-threads'],
        });
      } catch (err) {
        const error = errorMessage(err);
        log.error(error);
        fail.abort(error);
        return;
      }
      log.info({ workers: spec.workers }, 'workers launched');
      poll = setInterval(() => {
        watch().catch((err: unknown) => log.warn({ err }, 'could not check the workers'));
      }, this.opts.launcherPollMs ?? 5000);
    };
    let started = false;
    return {
      runOptions: {
        preferredWorkers: launcher.workerIds(id, spec.workers),
        exclusiveWorkers: true,
        fail: fail.signal,
        onPhase: (phase) => {
          if (phase !== 'training' || started) return;
          started = true;
          void start();
        },
      },
      stop: () => clearInterval(poll),
    };
  }

  /** Puts the job back in the queue now (not as a failure), for whichever coordinator runs next. */
  private async handBack(job: Job<ExperimentJobData>, token: string | undefined): Promise<never> {
    await job.moveToDelayed(Date.now() + 100, token);
    this.opts.log.info({ runId: job.data.id }, 'handed back to the queue');
    throw new DelayedError();
  }

  private onEvent(id: string, ledger: RunLedger, event: RunEvent, streamId: string, log: Logger): void {
    const { store } = this.opts;
    const fail = (err: unknown): void => log.warn({ err }, 'could not record an event');
    const fresh = ledger.apply(event);
    if (event.type === 'metrics' && fresh) {
      const step = event.step ?? event.epoch;
      for (const [key, value] of Object.entries(fresh))
        store.addMetricPoint(id, key, step, value).catch(fail);
      store.update(id, { latestMetrics: { ...ledger.latestMetrics } }).catch(fail);
    } else if (event.type === 'status') {
      store.setStatus(id, event.status, event.restarts).catch(fail);
      if (event.status === 'running') {
        this.gate.release(id).catch(fail);
        this.opts.redis
          .get(runKeys.plan(id))
          .then(async (raw) => {
            if (!raw) return;
            const plan = decodeJson(PlanRanks, raw, `run plan ${runKeys.plan(id)}`);
            await store.update(id, { workers: plan.ranks });
          })
          .catch(fail);
      }
    } else if (event.type === 'progress') {
      // Replayed history after a takeover is not counted again.
      if (Number(streamId.split('-')[0]) >= this.startedAt) this.opts.onStepTimings?.(event);
    } else if (event.type === 'failed') {
      log.warn({ rank: event.rank, generation: event.generation }, `rank failed: ${event.error}`);
    } else if (event.type === 'log') {
      log[event.level]({ rank: event.rank }, event.message);
    }
  }
}
