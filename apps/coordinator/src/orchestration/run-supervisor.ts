import type { Redis } from 'ioredis';
import { runKeys, RUN_KEYS_TTL_S, type RunEvent, type RunPlan, type RunStatus } from '@lits-ddp/protocol';
import type { RunTracker } from '../tracking/run-tracker.js';
import { publishEvent, readEvents } from './run-events.js';
import type { WorkerPool } from './worker-pool.js';

export type RunSetup = Omit<RunPlan, 'generation' | 'ranks' | 'resumeFrom'>;

export interface SupervisorOptions {
  redis: Redis;
  pool: WorkerPool;
  tracker: RunTracker;
  /** Makes every collective of (run, generation) reject within about a second. */
  abortCollectives: (runId: string, generation: number, reason: string) => Promise<void>;
  /** Worker ids to use first (the local launcher's own processes). */
  preferredWorkers?: string[];
  /** Called with workers found dead, before a restart (the local launcher respawns them). */
  onWorkersLost?: (workerIds: string[]) => Promise<void>;
  /** How long to wait for enough free workers at each (re)start. Default 5 min. */
  waitForWorkersMs?: number;
  onEvent?: (event: RunEvent) => void;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  signal?: AbortSignal;
}

export interface RunOutcome {
  status: 'finished' | 'failed' | 'cancelled';
  restarts: number;
  generation: number;
  error?: string;
  testMetrics?: Record<string, number>;
  /** Final weight hash of each rank (all equal when the run is healthy). */
  weightHashes?: string[];
  modelPath?: string;
  bestCheckpoint?: string;
  lastCheckpoint?: { path: string; epoch: number };
  /** The latest value of every metric logged (train_*, val_*, test_*, lr). */
  latestMetrics?: Record<string, number>;
  /** Worker id of each rank in the last generation. */
  workers?: string[];
}

class GenerationFailure extends Error {
  constructor(
    message: string,
    readonly lostWorkers: string[] = [],
  ) {
    super(message);
  }
}

class Cancelled extends Error {}

/**
 * Drives one run across its generations: leases workers, writes the plan, assigns ranks, follows the
 * event stream, watches heartbeats, and on a failure aborts the generation's collectives and
 * restarts every rank from the last checkpoint, up to max-restarts.
 */
export class RunSupervisor {
  private readonly loggedMetricSteps = new Set<string>();
  private readonly latestMetrics: Record<string, number> = {};
  private lastCheckpoint: { path: string; epoch: number } | undefined;
  private bestCheckpoint: string | undefined;
  private lastEventId = '0';
  private restarts = 0;
  private readonly blocking: Redis;

  constructor(
    private readonly setup: RunSetup,
    private readonly opts: SupervisorOptions,
  ) {
    this.blocking = opts.redis.duplicate();
  }

  async run(): Promise<RunOutcome> {
    const { runId } = this.setup;
    let generation = 0;
    try {
      for (;;) {
        generation++;
        try {
          const result = await this.runGeneration(generation);
          await this.setStatus('finished');
          return {
            status: 'finished',
            restarts: this.restarts,
            generation,
            ...result,
            ...this.checkpoints(),
          };
        } catch (err) {
          if (err instanceof Cancelled) {
            await this.opts.abortCollectives(runId, generation, `cancelled: ${err.message}`);
            await this.setStatus('cancelled', err.message);
            return {
              status: 'cancelled',
              restarts: this.restarts,
              generation,
              error: err.message,
              ...this.checkpoints(),
            };
          }
          const message = err instanceof Error ? err.message : String(err);
          await this.opts.abortCollectives(runId, generation, message);
          if (this.restarts >= this.setup.spec['max-restarts']) {
            const error = `${message} (after ${this.restarts} restart${this.restarts === 1 ? '' : 's'}; max-restarts ${this.setup.spec['max-restarts']})`;
            await this.setStatus('failed', error);
            return { status: 'failed', restarts: this.restarts, generation, error, ...this.checkpoints() };
          }
          this.restarts++;
          const from = this.lastCheckpoint ? `checkpoint of epoch ${this.lastCheckpoint.epoch}` : 'the start';
          this.opts.log?.(
            'warn',
            `generation ${generation} failed: ${message}; restart ${this.restarts} from ${from}`,
          );
          await this.setStatus('restarting', message);
          if (err instanceof GenerationFailure && err.lostWorkers.length > 0)
            await this.opts.onWorkersLost?.(err.lostWorkers);
        }
      }
    } finally {
      this.blocking.disconnect();
      for (const key of [runKeys.plan(runId), runKeys.events(runId), runKeys.status(runId)]) {
        await this.opts.redis.expire(key, RUN_KEYS_TTL_S).catch(() => undefined);
      }
    }
  }

  private checkpoints(): Pick<RunOutcome, 'bestCheckpoint' | 'lastCheckpoint' | 'latestMetrics'> {
    return {
      latestMetrics: { ...this.latestMetrics },
      ...(this.bestCheckpoint ? { bestCheckpoint: this.bestCheckpoint } : {}),
      ...(this.lastCheckpoint ? { lastCheckpoint: this.lastCheckpoint } : {}),
    };
  }

  private async runGeneration(generation: number): Promise<Partial<RunOutcome>> {
    const { runId, spec } = this.setup;
    const workers = await this.leaseWorkers(spec.workers);
    const plan: RunPlan = {
      ...this.setup,
      generation,
      ranks: workers,
      ...(this.lastCheckpoint ? { resumeFrom: this.lastCheckpoint } : {}),
    };
    await this.opts.redis.set(runKeys.plan(runId), JSON.stringify(plan));
    await this.setStatus('running');
    for (const [rank, id] of workers.entries())
      await this.opts.pool.send(id, { type: 'assign', runId, generation, rank });
    this.opts.log?.(
      'info',
      `generation ${generation}: ranks ${workers.map((w, r) => `${r}=${w}`).join(' ')}`,
    );

    const finished = new Map<number, Extract<RunEvent, { type: 'finished' }>>();
    const started = Date.now();
    try {
      while (finished.size < workers.length) {
        this.checkCancelled();
        if (await this.opts.redis.get(runKeys.cancel(runId))) throw new Cancelled('cancel requested');
        for (const { id, event } of await readEvents(this.blocking, runId, this.lastEventId, 1000)) {
          this.lastEventId = id;
          this.handle(event, generation, finished);
        }
        await this.opts.pool.renew(runId, workers);
        // A worker that never got going within its heartbeat grace is as lost as one that died.
        const lost: string[] = [];
        for (const id of workers) if (!(await this.opts.pool.alive(id))) lost.push(id);
        if (lost.length > 0 && Date.now() - started > 1000) {
          const ranks = lost.map((id) => `rank ${workers.indexOf(id)} (${id})`).join(', ');
          throw new GenerationFailure(`${ranks} lost its heartbeat`, lost);
        }
      }
    } finally {
      await this.opts.pool.release(runId, workers);
    }
    const ordered = [...finished.values()].sort((a, b) => a.rank - b.rank);
    const hashes = ordered.map((f) => f.weightHash);
    if (new Set(hashes).size !== 1)
      this.opts.log?.('error', `ranks ended with different weights: ${hashes.join(' ')}`);
    const rank0 = ordered[0];
    return {
      workers,
      weightHashes: hashes,
      ...(rank0 ? { testMetrics: rank0.testMetrics, modelPath: rank0.modelPath } : {}),
    };
  }

  private handle(
    event: RunEvent,
    generation: number,
    finished: Map<number, Extract<RunEvent, { type: 'finished' }>>,
  ): void {
    this.opts.onEvent?.(event);
    if ('generation' in event && event.generation !== generation) return;
    switch (event.type) {
      case 'metrics': {
        const fresh: Record<string, number> = {};
        for (const [k, v] of Object.entries(event.metrics)) {
          // After a restart, epochs past the checkpoint run again; each (metric, epoch) is logged once.
          const at = `${k}@${event.step ?? event.epoch}`;
          if (!this.loggedMetricSteps.has(at)) {
            this.loggedMetricSteps.add(at);
            fresh[k] = v;
          }
        }
        Object.assign(this.latestMetrics, event.metrics);
        this.opts.tracker.logMetrics(fresh, event.step ?? event.epoch);
        break;
      }
      case 'checkpoint':
        if (event.kind === 'last') this.lastCheckpoint = { path: event.path, epoch: event.epoch };
        else this.bestCheckpoint = event.path;
        break;
      case 'failed':
        throw new GenerationFailure(
          `rank ${event.rank} failed: ${event.error}${event.lateRank !== undefined ? ` (rank ${event.lateRank} did not deliver)` : ''}`,
        );
      case 'finished':
        finished.set(event.rank, event);
        break;
      default:
        break;
    }
  }

  private async leaseWorkers(count: number): Promise<string[]> {
    const deadline = Date.now() + (this.opts.waitForWorkersMs ?? 300_000);
    let announced = false;
    for (;;) {
      this.checkCancelled();
      const leased = await this.opts.pool.lease(this.setup.runId, count, this.opts.preferredWorkers);
      if (leased) return leased;
      if (!announced) {
        this.opts.log?.('info', `waiting for ${count} free worker${count === 1 ? '' : 's'}`);
        announced = true;
      }
      if (Date.now() > deadline)
        throw new GenerationFailure(`fewer than ${count} live, free workers after waiting`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private checkCancelled(): void {
    if (this.opts.signal?.aborted) throw new Cancelled(String(this.opts.signal.reason ?? 'cancelled'));
  }

  private async setStatus(status: RunStatus, message?: string): Promise<void> {
    await this.opts.redis.set(runKeys.status(this.setup.runId), status);
    const event: RunEvent = {
      type: 'status',
      status,
      restarts: this.restarts,
      ...(message ? { message } : {}),
    };
    await publishEvent(this.opts.redis, this.setup.runId, event);
  }
}
