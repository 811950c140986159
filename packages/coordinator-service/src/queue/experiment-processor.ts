import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { redisOutages } from '@lits-ddp/allreduce';
import { errorMessage } from '@lits-ddp/errors';
import { experimentKeys, runKeys, RUN_KEYS_TTL_S, type RunEvent } from '@lits-ddp/protocol';
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
import { CoordinatorLiveness } from './coordinator-liveness.js';
import { RecordProjection } from './record-projection.js';
import { bullPrefix, QUEUE_NAME, type ExperimentJobData } from './experiment-queue.js';
import type { ExperimentRecord, ExperimentStore } from './experiment-store.js';

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
  private readonly liveness: CoordinatorLiveness;
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
      // An idle worker blocks this long between looks at the queue: a job taken back from a dead
      // coordinator (CoordinatorLiveness) wakes no one, so this bounds how long it waits.
      drainDelay: 1,
      autorun: true,
    });
    // BullMQ emits 'error' for every failed reconnect of its connections: an outage is logged once by the tracker.
    redisOutages.followEvents(this.worker.backend, 'queue worker');
    this.worker.on('error', (err) => {
      if (!redisOutages.absorbs(err, 'queue worker')) opts.log.error({ err }, 'queue worker error');
    });
    this.worker.on('failed', (job, err) =>
      opts.log.error({ runId: job?.data.id, err }, 'experiment job failed'),
    );
    this.liveness = new CoordinatorLiveness(opts.redis, this.worker, opts.log);
    this.liveness.start();
  }

  /** Stops taking jobs; running experiments detach and go back to the queue for the next coordinator. */
  async close(timeoutMs = 20_000): Promise<void> {
    this.detach.abort('coordinator shutting down');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.worker.close().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    // A pending timer would keep the process alive after `stopped` for the rest of timeoutMs.
    clearTimeout(timer);
    if (timedOut) {
      this.opts.log.warn('queue worker did not close in time; forcing');
      await this.worker.close(true);
    }
    // Beats until every run was handed back, so no other coordinator takes one over meanwhile.
    await this.liveness.stop();
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
    // The lock token (`<queue worker id>:<n>`) names this coordinator, so others can tell whether it lives.
    const owner = token ?? `${this.liveness.id}:0`;
    const ownerKey = experimentKeys.owner(id);
    // One supervisor per run, even if a stalled job were handed out while its old processor lives on.
    while ((await this.opts.redis.set(ownerKey, owner, 'PX', OWNER_TTL_MS, 'NX')) !== 'OK') {
      if (this.detach.signal.aborted) return this.handBack(job, token);
      const held = await this.opts.redis.get(ownerKey);
      // The owner's coordinator stopped beating (killed): its key would block the takeover for OWNER_TTL_MS.
      if (held !== null && !(await this.liveness.holderAlive(held))) {
        await this.liveness.deleteIfUnchanged(ownerKey, held);
        continue;
      }
      await sleep(1000);
    }
    // Lost only when this coordinator stalled so long that another one took the run over: stop supervising it.
    const lost = new AbortController();
    const renew = setInterval(() => {
      // A missed renewal is retried at the next tick; several in a row let another processor in.
      this.opts.redis
        .eval(RENEW_OWNER, 1, ownerKey, owner, OWNER_TTL_MS)
        .then((renewed) => {
          if (renewed === 0) lost.abort('another coordinator took the run over');
        })
        .catch((err: unknown) => log.warn({ err }, 'could not renew the ownership of the run'));
    }, OWNER_TTL_MS / 5);
    try {
      return await this.supervise(job, token, rec, log, AbortSignal.any([this.detach.signal, lost.signal]));
    } catch (err) {
      if (!lost.signal.aborted) throw err;
      // The job is the other coordinator's now: nothing to hand back.
      log.error('stopped supervising: another coordinator took the run over while this one stalled');
      return 'taken over';
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
    detach: AbortSignal,
  ): Promise<string> {
    const { id, spec } = rec;
    const { store, redis } = this.opts;
    const started = (await loadRunRecord(redis, id)) !== undefined;
    if (!started && this.opts.launcher) {
      if (await redis.exists(runKeys.cancel(id))) return this.cancelledBeforeStart(id, log);
      await store.update(id, { status: 'preparing', startedAt: Date.now() });
    } else if (!started) {
      const admitted = await this.gate.admit(
        // An elastic run may start on min-workers (after its elastic wait for `workers`).
        { id, needs: spec['min-workers'], priority: rec.priority, submittedAt: rec.submittedAt },
        async () => detach.aborted || (await redis.exists(runKeys.cancel(id))) === 1,
      );
      if (admitted === 'stopped') {
        if (this.detach.signal.aborted) return this.handBack(job, token);
        // Taken over by another coordinator (see process()): its supervisor goes on from here.
        if (detach.aborted) throw new RunDetachedError(String(detach.reason));
        return this.cancelledBeforeStart(id, log);
      }
      await store.update(id, { status: 'preparing', startedAt: Date.now() });
      log.info({ workers: spec.workers }, 'admitted');
    } else log.info('taking over a run whose coordinator stopped');

    const ledger = new RunLedger();
    const projection = new RecordProjection(store, id, log);
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
        // Growth takes no workers that a queued experiment waits for.
        mayGrow: async () => (await this.gate.waitingCount()) === 0,
        detach,
        onEvent: (event, streamId) => this.onEvent(id, ledger, projection, event, streamId, log),
        log: (level, message) => log[level](message),
      });
    } catch (err) {
      if (err instanceof RunDetachedError && this.detach.signal.aborted)
        return await this.handBack(job, token);
      throw err;
    } finally {
      launched?.stop();
      await this.gate.release(id);
      // The record's last state comes from the result below, after every event's.
      await projection.flush();
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
    // The expiry a supervised run's stream gets when it ends.
    await redis.expire(runKeys.events(id), RUN_KEYS_TTL_S);
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

  private onEvent(
    id: string,
    ledger: RunLedger,
    projection: RecordProjection,
    event: RunEvent,
    streamId: string,
    log: Logger,
  ): void {
    const { store } = this.opts;
    const fail = (err: unknown): void => log.warn({ err }, 'could not record an event');
    const fresh = ledger.apply(event);
    if (event.type === 'metrics' && fresh) {
      const step = event.step ?? event.epoch;
      for (const [key, value] of Object.entries(fresh))
        store.addMetricPoint(id, key, step, value).catch(fail);
      store.update(id, { latestMetrics: { ...ledger.latestMetrics } }).catch(fail);
    } else if (event.type === 'status' || event.type === 'waiting' || event.type === 'generation') {
      projection.apply(event, streamId);
      if (event.type === 'status' && event.status === 'running') this.gate.release(id).catch(fail);
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
