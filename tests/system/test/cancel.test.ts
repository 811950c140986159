import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { CoordinatorClient } from '@lits-ddp/coordinator-client';
import { readEventRange, type StreamedEvent } from '@lits-ddp/orchestrator';
import { workerKeys } from '@lits-ddp/protocol';
import {
  CoordinatorProcess,
  phantomHome,
  tinySpec,
  TOKEN,
  waitFor,
  waitForRunEvent,
  Workers,
} from './process-harness.js';

const keyPrefix = `cancel-${randomBytes(3).toString('hex')}`;
// The processes get it in their environment; this one needs it to name the keys it reads itself.
process.env.LITS_KEY_PREFIX = keyPrefix;
const redisUrl = serviceUrl('redis');
const WORKER_IDS = ['w0', 'w1'];

/** Every event of a run's stream in Redis, oldest first. */
async function allRunEvents(redis: Redis, runId: string): Promise<StreamedEvent[]> {
  const out: StreamedEvent[] = [];
  for (let from = '-'; ;) {
    const page = await readEventRange(redis, runId, from, 1000);
    out.push(...page.events);
    if (!page.full || !page.lastId) return out;
    from = `(${page.lastId}`;
  }
}

/** Of the test's workers, those whose registry entry still names `runId` (a rank drops it when it ends). */
async function serving(redis: Redis, runId: string): Promise<string[]> {
  const out: string[] = [];
  for (const id of WORKER_IDS)
    if ((await redis.hget(workerKeys.info(id), 'runId')) === JSON.stringify(runId)) out.push(id);
  return out;
}

describe.skipIf(!redisUrl)('cancel of a running experiment, 2 worker processes', () => {
  let coordinator: CoordinatorProcess;
  let workers: Workers;
  let client: CoordinatorClient;
  let redis: Redis;
  let blocking: Redis;
  let base: string;

  beforeAll(async () => {
    const dirs = await phantomHome();
    base = dirname(dirs.dataRoot);
    coordinator = await CoordinatorProcess.start({ redisUrl: redisUrl as string, ...dirs, keyPrefix });
    workers = new Workers({ ...process.env, REDIS_URL: redisUrl, LITS_KEY_PREFIX: keyPrefix }, dirs.logs);
    for (const id of WORKER_IDS) workers.start(id);
    client = new CoordinatorClient({ url: coordinator.url, token: TOKEN });
    redis = new Redis(redisUrl as string);
    blocking = new Redis(redisUrl as string);
    await waitFor('2 idle workers', async () => {
      const { workers: list } = await client.workers();
      return list.filter((w) => w.state === 'idle').length === 2 ? true : undefined;
    });
  });

  afterAll(async () => {
    await coordinator?.kill('SIGTERM');
    await workers?.stopAll();
    redis?.disconnect();
    blocking?.disconnect();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('stops both ranks before the run is cancelled: no progress or checkpoint after, workers idle within 5 s', async () => {
    // Enough epochs that the run is still training long after the cancel.
    const { id } = await client.submit(tinySpec({ max_epochs: 60, 'run-name': 'cancelled-while-running' }));
    // Past the first epoch's checkpoint, so a rank that trained on would write more.
    const training = await waitForRunEvent(
      blocking,
      id,
      '0',
      'a progress event of epoch 1',
      (e) => e.type === 'progress' && e.epoch >= 1,
    );
    const deleteAt = Date.now();
    await client.cancel(id);
    const cancelled = await waitForRunEvent(
      blocking,
      id,
      training.id,
      'the cancelled status',
      (e) => e.type === 'status' && e.status === 'cancelled',
      30_000,
    );
    const servingAtCancelled = await serving(redis, id);
    await waitFor(
      'both workers idle and unleased',
      async () => {
        const { workers: list } = await client.workers();
        const free = list.filter((w) => WORKER_IDS.includes(w.id) && w.state === 'idle' && !w.leasedTo);
        return free.length === WORKER_IDS.length ? true : undefined;
      },
      5000,
    );
    const idleAfterMs = Date.now() - deleteAt;
    // Idle workers publish nothing more for the run: the stream is complete, and the cancel is its last word.
    const events = await allRunEvents(redis, id);
    const at = events.findIndex((e) => e.id === cancelled.id);
    expect(at).toBeGreaterThan(0);
    const after = events.slice(at + 1).map((e) => e.event.type);
    expect(after.filter((t) => t === 'progress' || t === 'checkpoint')).toEqual([]);
    expect(events.some((e) => e.event.type === 'finished')).toBe(false);
    expect(idleAfterMs).toBeLessThan(5000);
    // The supervisor publishes `cancelled` only once every rank has stopped serving the run.
    expect(servingAtCancelled).toEqual([]);
    process.stdout.write(`cancel: workers idle ${idleAfterMs} ms after the DELETE\n`);
  });
});
