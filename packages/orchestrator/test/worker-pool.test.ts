// A registry entry with one field that does not decode: the worker is not listed or leased, and the
// pool says so once per worker and field, naming both (it used to vanish without a word).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectSystemInfo, WorkerAgent } from '@lits-ddp/trainer';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { workerKeys } from '@lits-ddp/protocol';
import { WorkerPool } from '../src/index.js';

process.env.LITS_KEY_PREFIX = `pool-${randomBytes(3).toString('hex')}`;

const redisUrl = serviceUrl('redis');

describe.skipIf(!redisUrl)('worker registry entries that do not decode (real Redis)', () => {
  let redis: Redis;
  const agents: WorkerAgent[] = [];
  beforeAll(async () => {
    redis = new Redis(redisUrl as string);
    for (const id of ['good', 'bad']) {
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
    // Both heartbeat before anything is corrupted, so only the bad field keeps "bad" out.
    const pool = new WorkerPool(redis);
    for (let i = 0; i < 100; i++) {
      const live = (await pool.list()).filter((w) => w.heartbeatAgeMs !== undefined);
      if (live.length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await redis.hset(workerKeys.info('bad'), 'engineThreads', '{"intraOp":"two","interOp":1}');
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await redis.quit();
  });

  it('leaves the worker out of the list, the free workers and leases, and warns once naming it and the field', async () => {
    const warnings: string[] = [];
    const pool = new WorkerPool(redis, { warn: (m) => warnings.push(m) });
    expect((await pool.list()).map((w) => w.info.id)).toEqual(['good']);
    expect(await pool.freeWorkers()).toEqual(['good']);
    expect(await pool.lease('run-two', 2)).toBeUndefined();
    expect(await pool.lease('run-bad', 1, ['bad'], true)).toBeUndefined();
    expect(await pool.lease('run-one', 1, ['bad'])).toEqual(['good']);
    await pool.release('run-one', ['good']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^worker bad is not leased: .*worker bad, field engineThreads: field \/intraOp /,
    );

    // Another bad field is news: it is reported too, once.
    await redis.hset(workerKeys.info('bad'), 'engineThreads', 'null', 'state', 'idle');
    await pool.list();
    expect(await pool.lease('run-bad', 1, ['bad'], true)).toBeUndefined();
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatch(/^worker bad is not leased: .*worker bad, field state: not valid JSON/);
  });

  it('reports a missing required field by name', async () => {
    const warnings: string[] = [];
    const pool = new WorkerPool(redis, { warn: (m) => warnings.push(m) });
    await redis.hset(workerKeys.info('bad'), 'engineThreads', 'null', 'state', '"idle"');
    await redis.hdel(workerKeys.info('bad'), 'system');
    expect((await pool.list()).map((w) => w.info.id)).toEqual(['good']);
    expect(warnings).toEqual([
      expect.stringMatching(/^worker bad is not leased: .*required properties system/),
    ]);
  });
});
