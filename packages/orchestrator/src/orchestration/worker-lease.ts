import type { Redis } from 'ioredis';
import { runKeys, type RunEngine, type RunEvent, type WorkerInfo } from '@lits-ddp/protocol';
import { RunCancelledError, RunDoomedError } from '../errors.js';
import { sameEngine, workerEngine, type RunEngineChoice } from './engine-match.js';
import type { WorkerPool } from './worker-pool.js';

export interface WorkerLeaseRequest {
  runId: string;
  /** The generation the workers are for (named in the `waiting` events). */
  generation: number;
  /** The workers it wants. */
  count: number;
  /** The fewest it starts with, once `elasticWaitMs` passed without `count` free (elastic runs). */
  minimum: number;
  elasticWaitMs: number;
  redis: Redis;
  pool: WorkerPool;
  /** The run's engine: fixed after its first generation, otherwise chosen among the live workers. */
  engine: RunEngineChoice;
  preferredWorkers: string[];
  exclusiveWorkers: boolean;
  /** Past this with fewer than `minimum` free, the run fails (waiting again would wait as long). */
  waitForWorkersMs: number;
  /** Throws when the run is cancelled, detached or doomed meanwhile. */
  checkStop: () => void;
  /** Publishes the run's `waiting` events (and hands them to whoever follows the run at once). */
  publish: (event: RunEvent) => Promise<void>;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const POLL_MS = 500;

/** The live workers a run may lease, and how many of them are idle and run `engine` (any engine when undefined). */
export async function freeWorkers(
  pool: WorkerPool,
  engine: RunEngine | undefined,
  preferredWorkers: string[],
  exclusiveWorkers: boolean,
): Promise<{ live: WorkerInfo[]; free: number }> {
  const live = (await pool.list())
    .filter((w) => w.heartbeatAgeMs !== undefined)
    .map((w) => w.info)
    .filter((info) => !exclusiveWorkers || preferredWorkers.includes(info.id));
  const free = live.filter(
    (w) => w.state === 'idle' && (!engine || sameEngine(workerEngine(w), engine)),
  ).length;
  return { live, free };
}

/**
 * Leases `count` live, idle workers of one engine identity for a generation, waiting for them when
 * there are not enough; once `elasticWaitMs` passed it takes as many as are free, if at least
 * `minimum`. While it waits it publishes a `waiting` event whenever what it waits for changes (how
 * many are missing, which live workers there are), so the experiment record and the event stream say
 * why the run is not running. A cancel ends the wait within a poll.
 */
export async function leaseRunWorkers(
  req: WorkerLeaseRequest,
): Promise<{ workers: string[]; engine: RunEngine; leased: WorkerInfo[] }> {
  const { runId, count, minimum, pool, preferredWorkers, exclusiveWorkers } = req;
  const started = Date.now();
  let reported = '';
  for (;;) {
    req.checkStop();
    if (await req.redis.get(runKeys.cancel(runId))) throw new RunCancelledError('cancel requested');
    const { live, free } = await freeWorkers(pool, req.engine.engine, preferredWorkers, exclusiveWorkers);
    // After the elastic wait: as many as are free, between minimum and count.
    const elastic = Date.now() - started >= req.elasticWaitMs;
    const want = elastic ? Math.min(count, Math.max(minimum, free)) : count;
    const engine = req.engine.pick(live, want);
    const workers =
      engine &&
      (await pool.lease(runId, want, preferredWorkers, exclusiveWorkers, (info) =>
        sameEngine(workerEngine(info), engine),
      ));
    if (engine && workers) return { workers, engine, leased: live.filter((w) => workers.includes(w.id)) };
    const message = req.engine.waiting(live, want);
    // At least one: enough idle workers that are not the engine or not the preferred ones are still missing ones.
    const missing = Math.max(1, want - free);
    if (`${message}/${missing}/${want}` !== reported) {
      reported = `${message}/${missing}/${want}`;
      req.log?.('info', message);
      await req.publish({
        type: 'waiting',
        generation: req.generation,
        needed: want,
        free,
        missing,
        message,
      });
    }
    if (Date.now() - started > req.waitForWorkersMs) {
      const waited = Math.round((Date.now() - started) / 1000);
      throw new RunDoomedError(
        `fewer than ${want} live, free workers after waiting ${waited} s (needed ${want}, found ${free}): ${message}`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
