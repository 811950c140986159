import type { Redis } from 'ioredis';
import { redisOutages } from '@lits-ddp/allreduce';
import { errorMessage } from '@lits-ddp/errors';
import {
  runKeys,
  RunPlan,
  RUN_KEYS_TTL_S,
  type RunEngine,
  type RunEvent,
  type RunStatus,
} from '@lits-ddp/protocol';
import {
  GenerationFailedError,
  GenerationRegroup,
  RunCancelledError,
  RunDetachedError,
  RunDoomedError,
} from '../errors.js';
import { RunEngineChoice } from './engine-match.js';
import { publishEvent, readEvents, readEventRange } from './run-events.js';
import { waitForRanksToStop } from './rank-stop.js';
import { adoptRun, type Adoption } from './run-replay.js';
import { leaseRunWorkers } from './worker-lease.js';
import {
  generationChange,
  generationLease,
  generationTags,
  growthAtCheckpoint,
  type NextGeneration,
} from './generation-size.js';
import { RunLedger } from './run-ledger.js';
import type { RunOutcome } from './run-outcome.js';
import type { RunSetup, SupervisorOptions } from './supervisor-options.js';

/** The abort reason of a generation that ends with `err`. */
function stopReason(err: unknown): string {
  return err instanceof RunCancelledError ? `cancelled: ${err.message}` : errorMessage(err);
}

/**
 * Drives one run across its generations: leases workers, writes the plan, assigns ranks, follows the
 * event stream, watches heartbeats, and on a failure aborts the generation's collectives and
 * restarts every rank from the last checkpoint, up to max-restarts. With `adopt` it takes over a
 * run from a supervisor that died, re-deriving its state (and undelivered metrics) from the stream.
 */
export class RunSupervisor {
  private readonly ledger = new RunLedger();
  /** Fixed by the first generation's lease (or the adopted plan): every later generation runs it too. */
  private readonly engine: RunEngineChoice;
  private lastEventId = '0';
  /** Ids of the supervisor's own events, handed to onEvent when published: not handed again when read back. */
  private readonly delivered = new Set<string>();
  private readonly blocking: Redis;
  /** World size of the last generation that ran (0 before the first). */
  private worldSize = 0;
  /** Why the next generation starts (set when one ends). */
  private next: NextGeneration | undefined;
  /** The epoch of a `last` checkpoint of the running generation, where it may grow. */
  private growAt: number | undefined;

  constructor(
    private readonly setup: RunSetup,
    private readonly opts: SupervisorOptions,
  ) {
    // A duplicate has none of the original's listeners: without one ioredis prints every failed reconnect.
    this.blocking = redisOutages.follow(opts.redis.duplicate(), 'run supervisor');
    this.engine = new RunEngineChoice(setup.spec);
  }

  async run(): Promise<RunOutcome> {
    const { runId } = this.setup;
    let generation = 0;
    let next: Adoption = { kind: 'fresh' };
    if (this.opts.adopt) {
      const adopted = await adoptRun({
        redis: this.opts.redis,
        runId,
        ledger: this.ledger,
        tracker: this.opts.tracker,
        ...(this.opts.onEvent ? { onEvent: this.opts.onEvent } : {}),
        ...(this.opts.log ? { log: this.opts.log } : {}),
      });
      this.lastEventId = adopted.lastEventId;
      next = adopted.adoption;
      if (next.kind !== 'fresh') this.worldSize = next.plan.ranks.length;
    }
    try {
      if (next.kind === 'done') return this.endedOutcome(next.plan);
      for (;;) {
        let adopted: RunPlan | undefined;
        if (next.kind === 'follow') {
          adopted = next.plan;
          generation = next.plan.generation;
        } else generation++;
        const restartReason = next.kind === 'restart' ? next.reason : undefined;
        if (next.kind === 'restart') generation = next.plan.generation;
        next = { kind: 'fresh' };
        try {
          if (restartReason !== undefined) throw new GenerationFailedError(restartReason);
          const result = await this.runGeneration(generation, adopted);
          await this.setStatus('finished');
          return {
            status: 'finished',
            restarts: this.ledger.restarts,
            generation,
            ...result,
            ...this.outcomeState(),
          };
        } catch (err) {
          if (err instanceof RunDetachedError) throw err;
          if (err instanceof GenerationRegroup) {
            // Not a failure: no restart is counted. The ranks stopped; the next generation resumes the checkpoint.
            this.next = { reason: err.message, growTo: err.target };
            this.opts.log?.('info', `generation ${generation}: ${err.message}`);
            this.ledger.enterGeneration(generation + 1);
            await this.setStatus('restarting', err.message, { generation: generation + 1 });
            continue;
          }
          if (err instanceof RunCancelledError) {
            await this.opts.abortCollectives(runId, generation, `cancelled: ${err.message}`);
            await this.setStatus('cancelled', err.message);
            return {
              status: 'cancelled',
              restarts: this.ledger.restarts,
              generation,
              error: err.message,
              ...this.outcomeState(),
            };
          }
          const message = errorMessage(err);
          await this.opts.abortCollectives(runId, generation, message);
          const { restarts } = this.ledger;
          if (err instanceof RunDoomedError) {
            await this.setStatus('failed', message);
            return { status: 'failed', restarts, generation, error: message, ...this.outcomeState() };
          }
          if (restarts >= this.setup.spec['max-restarts']) {
            const error = `${message} (after ${restarts} restart${restarts === 1 ? '' : 's'}; max-restarts ${this.setup.spec['max-restarts']})`;
            await this.setStatus('failed', error);
            return { status: 'failed', restarts, generation, error, ...this.outcomeState() };
          }
          this.ledger.restarts = restarts + 1;
          const cp = this.ledger.lastCheckpoint;
          const from = cp ? `checkpoint of epoch ${cp.epoch}` : 'the start';
          this.opts.log?.(
            'warn',
            `generation ${generation} failed: ${message}; restart ${restarts + 1} from ${from}`,
          );
          const lost = err instanceof GenerationFailedError ? err.lostWorkers : [];
          this.next = { reason: message };
          this.ledger.enterGeneration(generation + 1);
          await this.setStatus('restarting', message, {
            generation: generation + 1,
            ...(lost.length > 0 ? { lost } : {}),
          });
          if (lost.length > 0) await this.opts.onWorkersLost?.(lost);
        }
      }
    } finally {
      this.blocking.disconnect();
      if (!this.opts.detach?.aborted) {
        for (const key of [runKeys.plan(runId), runKeys.events(runId), runKeys.status(runId)]) {
          await this.opts.redis.expire(key, RUN_KEYS_TTL_S).catch(() => undefined);
        }
      }
    }
  }

  /** The outcome of an adopted run that had ended already, as its stream says. */
  private endedOutcome(plan: RunPlan): RunOutcome {
    const last = this.ledger.lastStatus;
    const status = (last?.status ?? 'failed') as RunOutcome['status'];
    return {
      status,
      restarts: this.ledger.restarts,
      generation: plan.generation,
      ...(last?.message && status !== 'finished' ? { error: last.message } : {}),
      ...this.ledger.finishedResult(plan.ranks),
      ...this.outcomeState(),
    };
  }

  /** What the run learnt on its way, for every outcome: checkpoints, latest metrics, engine. */
  private outcomeState(): Pick<
    RunOutcome,
    'bestCheckpoint' | 'lastCheckpoint' | 'latestMetrics' | 'engine' | 'libtensorflow' | 'engineFallback'
  > {
    const { bestCheckpoint, lastCheckpoint } = this.ledger;
    return {
      latestMetrics: { ...this.ledger.latestMetrics },
      ...this.engine.outcome(),
      ...(bestCheckpoint ? { bestCheckpoint } : {}),
      ...(lastCheckpoint ? { lastCheckpoint } : {}),
    };
  }

  private async runGeneration(generation: number, adopted?: RunPlan): Promise<Partial<RunOutcome>> {
    const { runId } = this.setup;
    let workers: string[];
    if (adopted) {
      workers = adopted.ranks;
      this.worldSize = workers.length;
      // A plan from a coordinator older than RunPlan.engine has none: the next generation chooses again.
      if (adopted.engine) this.engine.adopt(adopted.engine);
      const lost = await this.opts.pool.reclaim(runId, workers);
      if (lost.length > 0)
        throw new GenerationFailedError(`workers ${lost.join(', ')} were lost while adopting`);
    } else {
      this.ledger.enterGeneration(generation);
      const leased = await this.leaseWorkers(generation);
      workers = leased.workers;
      const cp = this.ledger.lastCheckpoint;
      const { change, reason } = generationChange(this.setup.spec, this.worldSize, workers.length, this.next);
      this.worldSize = workers.length;
      this.next = undefined;
      const plan: RunPlan = {
        ...this.setup,
        generation,
        ranks: workers,
        engine: leased.engine,
        ...(cp ? { resumeFrom: cp } : {}),
      };
      await this.opts.redis.set(runKeys.plan(runId), JSON.stringify(plan));
      for (const [rank, id] of workers.entries())
        await this.opts.pool.send(id, { type: 'assign', runId, generation, rank });
      const resumeEpoch = cp ? cp.epoch + 1 : 0;
      const worldSize = workers.length;
      await this.publish({ type: 'generation', generation, worldSize, workers, change, reason, resumeEpoch });
      // Published after the assignments, so an adopting supervisor that sees it knows all were sent.
      await this.setStatus('running', undefined, { generation, workers });
      this.opts.tracker.setTags(generationTags(generation, worldSize, change, reason));
      this.opts.log?.(
        'info',
        `generation ${generation} (${change}, ${worldSize} worker${worldSize === 1 ? '' : 's'} from epoch ${resumeEpoch}): ranks ${workers.map((w, r) => `${r}=${w}`).join(' ')}`,
      );
    }

    const started = Date.now();
    try {
      while (this.ledger.finished.size < workers.length) {
        this.checkStop();
        if (await this.opts.redis.get(runKeys.cancel(runId))) throw new RunCancelledError('cancel requested');
        for (const { id, event } of await readEvents(this.blocking, runId, this.lastEventId, 1000)) {
          this.lastEventId = id;
          this.handle(event, id);
        }
        await this.throwReportedFailure(workers);
        await this.growAtCheckpoint(workers);
        this.checkStop();
        await this.opts.pool.renew(runId, workers);
        // A worker that never got going within its heartbeat grace is as lost as one that died.
        const lost: string[] = [];
        for (const id of workers) if (!(await this.opts.pool.alive(id))) lost.push(id);
        if (lost.length > 0 && Date.now() - started > 1000) {
          // A rank stopped by SIGTERM reports just before its heartbeat goes: the report says more.
          await this.drainEvents();
          await this.throwReportedFailure(workers);
          const ranks = lost.map((id) => `rank ${workers.indexOf(id)} (${id})`).join(', ');
          throw new GenerationFailedError(`${ranks} lost its heartbeat`, lost);
        }
      }
    } catch (err) {
      // The generation's collectives are aborted, and its ranks stopped, before anything else happens
      // to the run (status, a restart, the key cleanup that would also delete the abort key).
      if (!(err instanceof RunDetachedError)) await this.stopRanks(generation, workers, stopReason(err));
      throw err;
    } finally {
      // A detaching supervisor keeps the leases: they lapse after 30 s, and busy workers are never leased.
      if (!this.opts.detach?.aborted) await this.opts.pool.release(runId, workers);
    }
    const result = this.ledger.finishedResult(workers);
    if (new Set(result.weightHashes).size !== 1)
      this.opts.log?.('error', `ranks ended with different weights: ${result.weightHashes?.join(' ')}`);
    return result;
  }

  /** An elastic run may grow at the checkpoint it just wrote: that ends the generation there (GenerationRegroup). */
  private async growAtCheckpoint(workers: string[]): Promise<void> {
    const epoch = this.growAt;
    this.growAt = undefined;
    if (epoch === undefined) return;
    const regroup = await growthAtCheckpoint({
      pool: this.opts.pool,
      engine: this.engine.engine,
      preferredWorkers: this.opts.preferredWorkers ?? [],
      exclusiveWorkers: this.opts.exclusiveWorkers ?? false,
      maxWorkers: this.setup.spec['max-workers'],
      size: workers.length,
      epoch,
      ...(this.opts.mayGrow ? { mayGrow: this.opts.mayGrow } : {}),
    });
    if (regroup) throw regroup;
  }

  /** Aborts the generation's collectives and waits for its ranks to stop (see waitForRanksToStop). */
  private async stopRanks(generation: number, workers: string[], reason: string): Promise<void> {
    const { runId, spec } = this.setup;
    await this.opts.abortCollectives(runId, generation, reason);
    const collectiveTimeoutS = spec['collective-timeout-s'];
    const serving = await waitForRanksToStop(this.opts.redis, this.opts.pool, {
      runId,
      generation,
      workers,
      collectiveTimeoutS,
    });
    if (serving.length > 0)
      this.opts.log?.('warn', `generation ${generation}: ${serving.join(', ')} still serving the run`);
  }

  /** Ends the generation when a rank reported a failure. */
  private async throwReportedFailure(workers: string[]): Promise<void> {
    const failure = this.ledger.failure;
    if (!failure) return;
    // A cancel wins over the failures it causes (Ctrl-C also reaches the workers).
    this.checkStop();
    throw new GenerationFailedError(
      `rank ${failure.rank} failed: ${failure.error}${failure.lateRank !== undefined ? ` (rank ${failure.lateRank} did not deliver)` : ''}`,
      // A rank stopped by SIGTERM is leaving: the launcher replaces it like a dead one.
      await this.opts.pool.leaving(workers),
    );
  }

  /** Handles what the stream holds after the last event read, without waiting for more. */
  private async drainEvents(): Promise<void> {
    for (;;) {
      const from = this.lastEventId === '0' ? '-' : `(${this.lastEventId}`;
      const page = await readEventRange(this.opts.redis, this.setup.runId, from, 500);
      for (const { id, event } of page.events) this.handle(event, id);
      if (page.lastId) this.lastEventId = page.lastId;
      if (!page.full) return;
    }
  }

  private handle(event: RunEvent, streamId: string): void {
    if (!this.delivered.delete(streamId)) this.opts.onEvent?.(event, streamId);
    const fresh = this.ledger.apply(event);
    // The last epoch's checkpoint is followed by the end of training: no growth there.
    if (
      event.type === 'checkpoint' &&
      event.kind === 'last' &&
      event.generation === this.ledger.generation &&
      event.epoch < this.setup.spec.max_epochs - 1
    )
      this.growAt = event.epoch;
    if (fresh && event.type === 'metrics' && Object.keys(fresh).length > 0)
      this.opts.tracker.logMetrics(fresh, event.step ?? event.epoch);
  }

  /** Leases the workers of a generation (waiting for them, see leaseRunWorkers) and fixes the run's engine. */
  private async leaseWorkers(generation: number): Promise<{ workers: string[]; engine: RunEngine }> {
    const { preferredWorkers = [], exclusiveWorkers = false } = this.opts;
    const { spec } = this.setup;
    const waitS = spec['worker-wait-s'];
    const { workers, engine, leased } = await leaseRunWorkers({
      runId: this.setup.runId,
      generation,
      ...generationLease(spec, this.worldSize, this.next),
      redis: this.opts.redis,
      pool: this.opts.pool,
      engine: this.engine,
      preferredWorkers,
      exclusiveWorkers,
      waitForWorkersMs: waitS !== undefined ? waitS * 1000 : (this.opts.waitForWorkersMs ?? 300_000),
      checkStop: () => this.checkStop(),
      publish: (event) => this.publish(event),
      ...(this.opts.log ? { log: this.opts.log } : {}),
    });
    const fixed = this.engine.fix(engine, leased);
    if (fixed) {
      this.opts.tracker.setTags(fixed.tags);
      this.opts.log?.(fixed.fallback ? 'warn' : 'info', fixed.line);
    }
    return { workers, engine };
  }

  private checkStop(): void {
    if (this.opts.detach?.aborted) throw new RunDetachedError(String(this.opts.detach.reason ?? 'detached'));
    if (this.opts.signal?.aborted)
      throw new RunCancelledError(String(this.opts.signal.reason ?? 'cancelled'));
    if (this.opts.fail?.aborted) throw new RunDoomedError(String(this.opts.fail.reason ?? 'failed'));
  }

  private async setStatus(
    status: RunStatus,
    message?: string,
    extra: { generation?: number; workers?: string[]; lost?: string[] } = {},
  ): Promise<void> {
    await this.opts.redis.set(runKeys.status(this.setup.runId), status);
    await this.publish({
      type: 'status',
      status,
      restarts: this.ledger.restarts,
      ...(message ? { message } : {}),
      ...extra,
    });
  }

  /**
   * Publishes one of the supervisor's own events and hands it to onEvent at once: the stream is read
   * only while a generation runs, and a restarting run waiting for workers must not look `running`
   * to whoever follows onEvent (the experiment record) until the next generation starts.
   */
  private async publish(event: RunEvent): Promise<void> {
    const id = await publishEvent(this.opts.redis, this.setup.runId, event);
    if (!this.opts.onEvent) return;
    this.delivered.add(id);
    this.opts.onEvent(event, id);
  }
}
