import type { Redis } from 'ioredis';
import { workerKeys } from '@lits-ddp/protocol';
import type { WorkerPool } from './worker-pool.js';

/** How often, and how long past the collective timeout, a stopping generation's workers are checked. */
const RANK_STOP_POLL_MS = 100;
const RANK_STOP_MARGIN_MS = 5000;

export interface GenerationRanks {
  runId: string;
  generation: number;
  /** Worker ids in rank order. */
  workers: readonly string[];
  collectiveTimeoutS: number;
}

/** Of the generation's workers, those alive whose registry entry still names the run (a rank drops it when it ends). */
async function stillServing(redis: Redis, pool: WorkerPool, g: GenerationRanks): Promise<string[]> {
  const serving: string[] = [];
  for (const id of g.workers) {
    const [alive, run] = await Promise.all([pool.alive(id), redis.hget(workerKeys.info(id), 'runId')]);
    if (alive && run === JSON.stringify(g.runId)) serving.push(id);
  }
  return serving;
}

/**
 * Waits, once the generation's abort record is written, until every rank has stopped: its assignment
 * taken back if the worker had not picked it up, and the
 * worker no longer serving the run (back to idle or stopping) or without heartbeat. Ranks see the
 * abort record within one poll interval and stop at their next collective; past the collective
 * timeout (plus a margin) they would have failed on their own, so the wait ends there. Returns the
 * workers still serving then (none when all stopped). Only after it may the run's collective keys,
 * the abort record among them, be cleaned up.
 */
export async function waitForRanksToStop(
  redis: Redis,
  pool: WorkerPool,
  g: GenerationRanks,
): Promise<string[]> {
  const { runId, generation } = g;
  for (const [rank, id] of g.workers.entries())
    await pool.withdraw(id, { type: 'assign', runId, generation, rank });
  const deadline = Date.now() + g.collectiveTimeoutS * 1000 + RANK_STOP_MARGIN_MS;
  for (;;) {
    const serving = await stillServing(redis, pool, g);
    if (serving.length === 0 || Date.now() > deadline) return serving;
    await new Promise((r) => setTimeout(r, RANK_STOP_POLL_MS));
  }
}
