import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { coordinatorKeys, experimentKeys, resolveSpec } from '@lits-ddp/protocol';
import {
  bullPrefix,
  ExperimentProcessor,
  ExperimentQueue,
  ExperimentStore,
  QUEUE_NAME,
} from '../src/index.js';
import type { ExperimentJobData } from '../src/queue/experiment-queue.js';
import { CoordinatorLiveness, holderOf } from '../src/queue/coordinator-liveness.js';

process.env.LITS_KEY_PREFIX = `alive-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');

describe.skipIf(!redisUrl)(
  'CoordinatorLiveness: the jobs of a coordinator that stopped beating (real BullMQ)',
  () => {
    const clients: Redis[] = [];
    const client = (): Redis => {
      const c = new Redis(redisUrl as string, { maxRetriesPerRequest: null });
      clients.push(c);
      return c;
    };
    let queue: ExperimentQueue;
    /** Takes jobs by hand (no processor), as a coordinator that is then killed would have. */
    let taker: Worker<ExperimentJobData>;
    let sweeper: Worker<ExperimentJobData>;
    let liveness: CoordinatorLiveness;

    beforeAll(async () => {
      queue = new ExperimentQueue(client());
      taker = new Worker<ExperimentJobData>(QUEUE_NAME, null, { connection: client(), prefix: bullPrefix() });
      sweeper = new Worker<ExperimentJobData>(QUEUE_NAME, null, {
        connection: client(),
        prefix: bullPrefix(),
      });
      liveness = new CoordinatorLiveness(client(), sweeper, pino({ level: 'silent' }));
    });
    afterAll(async () => {
      await taker.close();
      await sweeper.close();
      await queue.close();
      for (const c of clients) c.disconnect();
    });

    it('moves back an active job whose lock holder has no beat, and leaves one whose holder beats', async () => {
      const redis = client();
      const alive = `${randomBytes(8).toString('hex')}`;
      const dead = `${randomBytes(8).toString('hex')}`;
      await queue.enqueue('exp-held', 50);
      await queue.enqueue('exp-orphaned', 50);
      // Lock tokens are `<worker id>:<n>`, as BullMQ makes them: one of a beating coordinator, one of a dead one.
      const held = await taker.getNextJob(`${alive}:0`);
      const orphaned = await taker.getNextJob(`${dead}:0`);
      expect([held?.id, orphaned?.id]).toEqual(['exp-held', 'exp-orphaned']);
      await redis.set(coordinatorKeys.alive(alive), '1', 'PX', 60_000);

      expect(await liveness.sweep()).toEqual(['exp-orphaned']);
      expect(await queue.queue.getJobState('exp-orphaned')).toBe('prioritized');
      expect(await queue.queue.getJobState('exp-held')).toBe('active');
      // Taken out of BullMQ's stalled bookkeeping too: a live worker takes it up again, with its own lock.
      const again = await taker.getNextJob(`${alive}:1`);
      expect(again?.id).toBe('exp-orphaned');
      expect(await liveness.sweep()).toEqual([]);
    });

    it('counts itself alive, a holder without a key dead, and stops beating when it stops', async () => {
      liveness.start();
      const redis = client();
      expect(await liveness.holderAlive(`${sweeper.id}:7`)).toBe(true);
      expect(await liveness.holderAlive('0123abcd:1')).toBe(false);
      expect(holderOf(`${sweeper.id}:12`)).toBe(sweeper.id);
      await liveness.stop();
      expect(await redis.exists(coordinatorKeys.alive(sweeper.id))).toBe(0);
    });
  },
);

/** Polls `check` until it holds; generous, for a loaded machine (the owner is renewed every 3 s). */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!redisUrl)(
  'a coordinator whose run another one took over (real processor, real BullMQ)',
  () => {
    it('stops supervising it and leaves the record and the new owner alone', async () => {
      const clients: Redis[] = [];
      const client = (): Redis => {
        const c = new Redis(redisUrl as string, { maxRetriesPerRequest: null });
        clients.push(c);
        return c;
      };
      const home = await mkdtemp(join(tmpdir(), 'coord-takeover-'));
      const lines: string[] = [];
      const log = pino(
        { level: 'info' },
        new Writable({
          write(chunk: Buffer, _enc, done) {
            lines.push(chunk.toString());
            done();
          },
        }),
      );
      const redis = client();
      const store = new ExperimentStore(redis);
      const queue = new ExperimentQueue(client());
      const processor = new ExperimentProcessor({
        connection: client(),
        redis: client(),
        redisUrl: redisUrl as string,
        store,
        home,
        log,
        gate: { pollMs: 100 },
      });
      try {
        const resolved = resolveSpec({
          'dataset-path': join(home, 'ds'),
          workers: 2,
          max_epochs: 1,
          'test-epochs': 1,
        });
        if (!resolved.ok) throw new Error(JSON.stringify(resolved.errors));
        const id = `taken-${randomBytes(3).toString('hex')}`;
        await store.create({ id, spec: resolved.spec, priority: 50 });
        await queue.enqueue(id, 50);
        // No worker is registered: the run waits at the capacity gate, owned and renewed by this processor.
        const owner = experimentKeys.owner(id);
        await eventually('the processor to own the run', async () => (await redis.get(owner)) !== null);
        expect(await redis.get(owner)).toMatch(new RegExp(`^${processor.worker.id}:`));
        // What another coordinator's takeover leaves: the owner key and the job's lock are its own now.
        const other = 'another-coordinator:1';
        await redis.set(coordinatorKeys.alive('another-coordinator'), '1', 'PX', 60_000);
        await redis.set(owner, other, 'PX', 60_000);
        await redis.set(`${bullPrefix()}:${QUEUE_NAME}:${id}:lock`, other, 'PX', 60_000);
        const said = 'stopped supervising: another coordinator took the run over while this one stalled';
        await eventually('the processor to give the run up', async () => lines.some((l) => l.includes(said)));
        expect(lines.filter((l) => l.includes(said))).toHaveLength(1);
        expect(await redis.get(owner)).toBe(other);
        expect((await store.get(id))?.status).toBe('queued');
        expect(await queue.queue.getJobState(id)).toBe('active');
      } finally {
        await processor.close(5000);
        await queue.close();
        for (const c of clients) c.disconnect();
        await rm(home, { recursive: true, force: true });
      }
    });
  },
);
