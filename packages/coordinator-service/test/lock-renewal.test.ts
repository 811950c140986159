import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { resolveSpec, runKeys } from '@lits-ddp/protocol';
import {
  bullPrefix,
  ExperimentProcessor,
  ExperimentQueue,
  ExperimentStore,
  QUEUE_NAME,
} from '../src/index.js';

process.env.LITS_KEY_PREFIX = `lock-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');
const LOCK_MS = 2000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!redisUrl)('BullMQ lock renewal: two processors on one queue (real Redis)', () => {
  let home: string;
  let redis: Redis;
  let store: ExperimentStore;
  let queue: ExperimentQueue;
  let events: QueueEvents;
  const processors: Array<{ name: string; processor: ExperimentProcessor; active: string[] }> = [];
  const stalled: string[] = [];
  const clients: Redis[] = [];
  const client = (): Redis => {
    const c = new Redis(redisUrl as string, { maxRetriesPerRequest: null });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'coord-lock-'));
    redis = client();
    store = new ExperimentStore(redis);
    queue = new ExperimentQueue(client());
    events = new QueueEvents(QUEUE_NAME, {
      connection: client(),
      prefix: bullPrefix(),
    });
    events.on('stalled', ({ jobId }) => stalled.push(`queue events: ${jobId}`));
    await events.waitUntilReady();
    for (const name of ['A', 'B']) {
      // One experiment each: while A holds one, a second must go to B, which shows B is polling.
      const processor = new ExperimentProcessor({
        connection: client(),
        redis: client(),
        redisUrl: redisUrl as string,
        store,
        home,
        log: pino({ level: 'silent' }),
        concurrency: 1,
        lockDurationMs: LOCK_MS,
        stalledIntervalMs: 500,
        maxStalledCount: 5,
        gate: { pollMs: 200 },
      });
      const entry = { name, processor, active: [] as string[] };
      processor.worker.on('active', (job) => entry.active.push(job.id as string));
      processor.worker.on('stalled', (jobId) => stalled.push(`processor ${name}: ${jobId}`));
      processors.push(entry);
    }
    await Promise.all(processors.map((p) => p.processor.worker.waitUntilReady()));
  });
  afterAll(async () => {
    for (const { processor } of processors) await processor.close(5000);
    await events?.close();
    await queue?.close();
    for (const c of clients) c.disconnect();
    await rm(home, { recursive: true, force: true });
  });

  async function submit(name: string): Promise<string> {
    const resolved = resolveSpec({
      'dataset-path': join(home, 'ds'),
      workers: 1,
      max_epochs: 1,
      'test-epochs': 1,
    });
    if (!resolved.ok) throw new Error(JSON.stringify(resolved.errors));
    const id = `lock-${name}-${randomBytes(3).toString('hex')}`;
    await store.create({ id, spec: resolved.spec, priority: 50 });
    await queue.enqueue(id, 50);
    return id;
  }
  const holderOf = (id: string): string[] =>
    processors.filter((p) => p.active.includes(id)).map((p) => p.name);
  const lockKey = (id: string): string => `${bullPrefix()}:${QUEUE_NAME}:${id}:lock`;

  it('keeps a job that runs three lock durations with one processor: never stalled, never taken by the other', async () => {
    // No worker is registered under this prefix, so each experiment waits for capacity: its job is
    // active and its processor busy for as long as the test wants, as in a run of many hours.
    const long = await submit('long');
    for (let i = 0; i < 50 && holderOf(long).length === 0; i++) await sleep(100);
    const [holder] = holderOf(long);
    expect(holder).toBeDefined();
    const token = await redis.get(lockKey(long));
    expect(token).toBeTruthy();

    const other = await submit('other');
    const started = Date.now();
    const ttls: number[] = [];
    while (Date.now() - started < 3 * LOCK_MS) {
      await sleep(250);
      expect(await (await queue.queue.getJob(long))?.getState()).toBe('active');
      expect(await redis.get(lockKey(long))).toBe(token); // the same holder's lock, renewed
      ttls.push(await redis.pttl(lockKey(long)));
    }
    // Renewed: the lock never ran out although 3 durations passed, and was refreshed along the way.
    expect(Math.min(...ttls)).toBeGreaterThan(0);
    expect(Math.max(...ttls)).toBeGreaterThan(LOCK_MS / 2);
    // The other processor was live and took the second experiment, but never the first.
    expect(holderOf(other)).toEqual(processors.filter((p) => p.name !== holder).map((p) => p.name));
    expect(holderOf(long)).toEqual([holder]);
    expect(stalled).toEqual([]);

    // Cancelled while waiting: the holder finishes the job itself.
    for (const id of [long, other]) await redis.set(runKeys.cancel(id), 'test over', 'EX', 60);
    for (const id of [long, other]) {
      for (let i = 0; i < 50 && (await (await queue.queue.getJob(id))?.getState()) !== 'completed'; i++)
        await sleep(100);
      const job = await queue.queue.getJob(id);
      expect(await job?.getState()).toBe('completed');
      expect(job?.returnvalue).toBe('cancelled');
      expect(job?.stalledCounter).toBe(0);
      expect(job?.attemptsStarted).toBe(1);
      expect((await store.get(id))?.status).toBe('cancelled');
    }
    expect(processors.map((p) => p.active.length)).toEqual([1, 1]);
    expect(stalled).toEqual([]);
  });
});
