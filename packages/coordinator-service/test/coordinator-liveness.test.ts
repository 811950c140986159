import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { coordinatorKeys } from '@lits-ddp/protocol';
import { bullPrefix, ExperimentQueue, QUEUE_NAME } from '../src/index.js';
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
