import type { Redis } from 'ioredis';
import { runKeys, type RunEngine, type RunEvent, type WorkerInfo } from '@lits-ddp/protocol';
import { GenerationFailedError, RunCancelledError } from '../errors.js';
import { sameEngine, workerEngine, type RunEngineChoice } from './engine-match.js';
import type { WorkerPool } from './worker-pool.js';

export interface WorkerLeaseRequest {
  runId: string;
  /** The generation the workers are for (named in the `waiting` events). */
  generation: number;
  count: number;
  redis: Redis;
  pool: WorkerPool;
  /** The run's engine: fixed after its first generation, otherwise chosen among the live workers. */
  engine: RunEngineChoice;
  preferredWorkers: string[];
  exclusiveWorkers: boolean;
  /** Past this, the generation fails (a restart of the run, or its end). */
  waitForWorkersMs: number;
  /** Throws when the run is cancelled, detached or doomed meanwhile. */
  checkStop: () => void;
  /** Publishes the run's `waiting` events (and hands them to whoever follows the run at once). */
  publish: (event: RunEvent) => Promise<void>;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const POLL_MS = 500;

/**
 * Leases `count` live, idle workers of one engine identity for a generation, waiting for them when
 * there are not enough. While it waits it publishes a `waiting` event whenever what it waits for
 * changes (how many are missing, which live workers there are), so the experiment record and the
 * event stream say why the run is not running. A cancel ends the wait within a poll.
 */
export async function leaseRunWorkers(
  req: WorkerLeaseRequest,
): Promise<{ workers: string[]; engine: RunEngine; leased: WorkerInfo[] }> {
  const { runId, count, pool, preferredWorkers, exclusiveWorkers } = req;
  const deadline = Date.now() + req.waitForWorkersMs;
  let reported = '';
  for (;;) {
    req.checkStop();
    if (await req.redis.get(runKeys.cancel(runId))) throw new RunCancelledError('cancel requested');
    const live = (await pool.list())
      .filter((w) => w.heartbeatAgeMs !== undefined)
      .map((w) => w.info)
      .filter((info) => !exclusiveWorkers || preferredWorkers.includes(info.id));
    const engine = req.engine.pick(live, count);
    const workers =
      engine &&
      (await pool.lease(runId, count, preferredWorkers, exclusiveWorkers, (info) =>
        sameEngine(workerEngine(info), engine),
      ));
    if (engine && workers) return { workers, engine, leased: live.filter((w) => workers.includes(w.id)) };
    const message = req.engine.waiting(live, count);
    const fixed = req.engine.engine;
    const free = live.filter(
      (w) => w.state === 'idle' && (!fixed || sameEngine(workerEngine(w), fixed)),
    ).length;
    // At least one: enough idle workers that are not the engine or not the preferred ones are still missing ones.
    const missing = Math.max(1, count - free);
    if (`${message}/${missing}` !== reported) {
      reported = `${message}/${missing}`;
      req.log?.('info', message);
      await req.publish({
        type: 'waiting',
        generation: req.generation,
        needed: count,
        free,
        missing,
        message,
      });
    }
    if (Date.now() > deadline)
      throw new GenerationFailedError(`fewer than ${count} live, free workers after waiting: ${message}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
