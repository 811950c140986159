import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { collectSystemInfo, WorkerAgent } from '@lits-ddp/trainer';
import { WorkerPool } from '@lits-ddp/orchestrator';
import { admissionKeys } from '@lits-ddp/protocol';
import { CapacityGate, type GateEntry } from '../src/index.js';

process.env.LITS_KEY_PREFIX = `gate-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');

describe.skipIf(!redisUrl)('CapacityGate with real registered workers', () => {
  let redis: Redis;
  let pool: WorkerPool;
  const agents: WorkerAgent[] = [];

  beforeAll(async () => {
    redis = new Redis(redisUrl as string, { maxRetriesPerRequest: null });
    pool = new WorkerPool(redis);
    for (const id of ['g0', 'g1']) {
      const agent = new WorkerAgent({
        redisUrl: redisUrl as string,
        workerId: id,
        engine: 'cpu',
        device: 'cpu',
        system: collectSystemInfo('4.22.0'),
        heartbeatIntervalS: 0.5,
      });
      await agent.start();
      agents.push(agent);
    }
    for (let i = 0; i < 50 && (await pool.freeWorkers()).length < 2; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await pool.freeWorkers()).toEqual(['g0', 'g1']);
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    redis.disconnect();
  });

  const entry = (id: string, needs: number, priority: number, submittedAt: number): GateEntry => ({
    id,
    needs,
    priority,
    submittedAt,
  });
  /** Runs admit() for each entry at once; resolves with the order in which they were admitted. */
  async function admissions(
    gate: CapacityGate,
    entries: GateEntry[],
    stopAfterMs: number,
  ): Promise<string[]> {
    const order: string[] = [];
    const deadline = Date.now() + stopAfterMs;
    await Promise.all(
      entries.map(async (e) => {
        const r = await gate.admit(e, async () => Date.now() > deadline);
        if (r === 'admitted') order.push(e.id);
      }),
    );
    return order;
  }

  it('admits by priority, then submission time, and reserves the workers it admits', async () => {
    const gate = new CapacityGate(redis, pool, { pollMs: 50 });
    const order = await admissions(
      gate,
      [entry('low', 1, 10, 1), entry('high-late', 1, 90, 3), entry('high-early', 1, 90, 2)],
      1500,
    );
    // Two workers: the two of priority 90 (earlier first); 'low' waits while they hold them.
    expect(order).toEqual(['high-early', 'high-late']);
    await gate.release('high-early');
    expect(await admissions(gate, [entry('low', 1, 10, 1)], 1500)).toEqual(['low']);
    await gate.release('high-late');
    await gate.release('low');
  });

  it('lets a smaller experiment pass one that does not fit, until that one has waited too long', async () => {
    const backfill = new CapacityGate(redis, pool, { pollMs: 50, starvationMs: 60_000 });
    await backfill.admit(entry('holder', 1, 50, 0), async () => false);
    // One worker free: 'big' (needs 2) cannot start, 'small' behind it may.
    expect(await admissions(backfill, [entry('big', 2, 50, 1), entry('small', 1, 50, 2)], 1500)).toEqual([
      'small',
    ]);
    await backfill.release('small');

    const strict = new CapacityGate(redis, pool, { pollMs: 50, starvationMs: 0 });
    // 'big' has waited past starvationMs: the free worker is held for it, 'small' does not start.
    expect(await admissions(strict, [entry('big', 2, 50, 1), entry('small', 1, 50, 2)], 1500)).toEqual([]);
    await strict.release('holder');
    expect(await admissions(strict, [entry('big', 2, 50, 1), entry('small', 1, 50, 2)], 3000)).toEqual([
      'big',
    ]);
    await strict.release('big');
  });

  it('refuses a corrupt reservation with an error naming its key and field, and admits once it is gone', async () => {
    const gate = new CapacityGate(redis, pool, { pollMs: 50 });
    await redis.hset(admissionKeys.reserved(), 'corrupt', '{"needs":"two","at":0}');
    try {
      await expect(gate.admit(entry('after-corrupt', 1, 50, 0), async () => false)).rejects.toThrow(
        `capacity gate ${admissionKeys.reserved()} field corrupt: field /needs`,
      );
      expect(await gate.position('after-corrupt')).toBeUndefined();
    } finally {
      await redis.hdel(admissionKeys.reserved(), 'corrupt');
    }
    expect(await gate.admit(entry('after-corrupt', 1, 50, 0), async () => false)).toBe('admitted');
    await gate.release('after-corrupt');
  });
});
