import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisServer } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import {
  experimentKeys,
  experimentQueueKeys,
  resolveSpec,
  runKeys,
  type ResolvedSpec,
} from '@lits-ddp/protocol';
import { buildApp, type AppOptions, type CoordinatorApp } from '../src/index.js';
import { ExperimentQueue } from '../src/queue/experiment-queue.js';
import { ExperimentStore } from '../src/queue/experiment-store.js';
import { QueueFeeder } from '../src/queue/queue-feeder.js';
import { createLogger } from '../src/server/logger.js';

// The outbox between a stored submission and its BullMQ job (src/queue/queue-feeder.ts): POST answers once
// the record is stored; the feeder adds the job when the burst settles, or after a crash, on the next start.
process.env.LITS_KEY_PREFIX = `feeder-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');
const TOKEN = 'feeder-test-token-0123456789';
const LATER = { settleMs: 3_600_000, maxDelayMs: 3_600_000, sweepMs: 3_600_000 };

/** Ids of jobs BullMQ reports added, and a wait for a set of them (its events, not polling). */
class AddedJobs {
  readonly ids = new Set<string>();
  private constructor(readonly events: QueueEvents) {
    events.on('added', ({ jobId }) => this.ids.add(jobId));
  }
  static async follow(url: string): Promise<AddedJobs> {
    const events = new QueueEvents(experimentQueueKeys.name, {
      connection: { url },
      prefix: experimentQueueKeys.prefix(),
    });
    await events.waitUntilReady();
    return new AddedJobs(events);
  }
  async all(ids: readonly string[]): Promise<void> {
    while (!ids.every((id) => this.ids.has(id))) await once(this.events, 'added');
  }
}

describe.skipIf(!redisUrl)('the queue feeder (real Redis, real BullMQ, real Fastify)', () => {
  let base: string;
  let probe: Redis;
  let added: AddedJobs;
  const apps: CoordinatorApp[] = [];

  const options = (extra: Partial<AppOptions> = {}): AppOptions => ({
    redisUrl: redisUrl as string,
    tokens: [TOKEN],
    dataRoot: join(base, 'data'),
    home: join(base, 'home'),
    logger: createLogger('warn'),
    ...extra,
  });
  const started = async (extra: Partial<AppOptions> = {}): Promise<CoordinatorApp> => {
    const app = await buildApp(options(extra));
    apps.push(app);
    return app;
  };
  const submit = (app: CoordinatorApp, runName: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { 'dataset-path': 'ds', gpus: 1, max_epochs: 1, 'test-epochs': 1, 'run-name': runName },
    });
  /** A spec as the API stores it (its data set resolved inside the data root). */
  const storedSpec = (): ResolvedSpec => {
    const resolved = resolveSpec({
      'dataset-path': join(base, 'data', 'ds'),
      gpus: 1,
      max_epochs: 1,
      'test-epochs': 1,
    });
    if (!resolved.ok) throw new Error(JSON.stringify(resolved.errors));
    return resolved.spec;
  };
  const inOutbox = async (id: string) => (await probe.zscore(experimentKeys.unqueued(), id)) !== null;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'coord-feeder-'));
    await mkdir(join(base, 'data', 'ds'), { recursive: true });
    probe = new Redis(redisUrl as string);
    added = await AddedJobs.follow(redisUrl as string);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await added?.events.close();
    probe?.disconnect();
    await rm(base, { recursive: true, force: true });
  });

  it('adds the jobs of a burst of submissions on its own once the burst settles, and empties the outbox', async () => {
    // No sweeps: in this file a drain runs when a test asks for one or a burst settles.
    const app = await started({ queueFeeder: { sweepMs: LATER.sweepMs } });
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(app, `burst-${i}`)));
    expect(replies.map((r) => r.statusCode)).toEqual(Array(20).fill(202));
    const ids = replies.map((r) => r.json().id as string);
    await added.all(ids);
    for (const id of ids) expect(await app.ctx.queue.queue.getJobState(id)).toBe('prioritized');
    // Its entries go right after the jobs are added (the drain's last command): wait for that drain.
    await app.ctx.feeder.drain();
    for (const id of ids) expect(await inOutbox(id)).toBe(false);
  });

  it('loses nothing when the coordinator dies between storing and queueing: the next one adds the job at its start', async () => {
    // What a POST stores before it answers; the coordinator then died before its feeder ran.
    const id = `orphan-${randomBytes(3).toString('hex')}`;
    expect((await new ExperimentStore(probe).create({ id, spec: storedSpec(), priority: 80 })).created).toBe(
      true,
    );
    expect(await inOutbox(id)).toBe(true);

    const next = await started({ queueFeeder: LATER });
    await added.all([id]);
    expect((await next.ctx.queue.queue.getJob(id))?.opts.priority).toBe(21);
  });

  it('cancels a submission whose job is not added yet: it leaves the outbox and never gets one', async () => {
    const app = await started({ queueFeeder: LATER });
    for (const running of apps) await running.ctx.feeder.drain();
    const id = (await submit(app, 'cancel-early')).json().id as string;
    expect(await inOutbox(id)).toBe(true);
    const cancel = await app.inject({
      method: 'DELETE',
      url: `/v1/experiments/${id}`,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json()).toEqual({ id, status: 'cancelled' });
    expect(await inOutbox(id)).toBe(false);
    // Set before the outbox is touched: a processor that took a job added meanwhile would stop before starting.
    expect(await probe.get(runKeys.cancel(id))).toBe('cancelled through the API');
    await app.ctx.feeder.drain();
    expect(await app.ctx.queue.queue.getJob(id)).toBeUndefined();
    expect((await app.ctx.store.get(id))?.status).toBe('cancelled');
  });

  it('takes the job back from a submission cancelled while its job was being added', async () => {
    const app = await started({ queueFeeder: LATER });
    for (const running of apps) await running.ctx.feeder.drain();
    const id = (await submit(app, 'cancel-during-add')).json().id as string;
    const { queue, feeder, store } = app.ctx;
    const enqueueAll = queue.enqueueAll.bind(queue);
    vi.spyOn(queue, 'enqueueAll').mockImplementationOnce(async (jobs) => {
      await enqueueAll(jobs);
      expect(await queue.queue.getJob(id)).toBeDefined();
      // A cancel that found no job yet and took the entry, before the feeder's second look at the records.
      expect(await feeder.withdraw(id)).toBe(true);
      await store.update(id, { status: 'cancelled', done: true });
    });
    expect(await feeder.drain()).toBe(0);
    expect(await queue.queue.getJob(id)).toBeUndefined();
    expect(await inOutbox(id)).toBe(false);
  });

  it('through a Redis outage: says so once, keeps the entries, and adds their jobs when Redis is back', async () => {
    const own = await RedisServer.start({ aof: true });
    const api = new Redis(own.url, { maxRetriesPerRequest: 1 });
    const queueConnection = new Redis(own.url, { maxRetriesPerRequest: null });
    const queue = new ExperimentQueue(queueConnection);
    for (const c of [api, queueConnection]) c.on('error', () => undefined); // the outage is the point
    queue.queue.on('error', () => undefined);
    const warnings: string[] = [];
    const feeder = new QueueFeeder(api, queue, { ...LATER, warn: (m) => warnings.push(m) });
    try {
      const store = new ExperimentStore(api);
      expect((await store.create({ id: 'during-outage', spec: storedSpec(), priority: 50 })).created).toBe(
        true,
      );
      await own.stop();
      expect(await feeder.drain()).toBe(0);
      expect(await feeder.drain()).toBe(0);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/could not add stored submissions to the queue \(retried\)/);

      await own.start();
      if (api.status !== 'ready') await once(api, 'ready');
      expect(await feeder.drain()).toBe(1);
      expect(warnings.at(-1)).toMatch(/drains again/);
      expect(await queue.queue.getJob('during-outage')).toBeDefined();
      expect(await api.zcard(experimentKeys.unqueued())).toBe(0);
    } finally {
      await feeder.close();
      await queue.close();
      api.disconnect();
      queueConnection.disconnect();
      await own.dispose();
    }
  });
});
