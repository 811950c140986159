import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { buildApp, type CoordinatorApp } from '../src/index.js';
import { createLogger } from '../src/server/logger.js';

// What one POST /v1/experiments costs, counted rather than timed (bench/load.mjs times it): the
// Redis commands it sends (MONITOR of the real server) and the file-system calls that confine its
// dataset path. On a 2-core machine each one was a visible share of the ~1 ms a POST used to cost.
const prefix = `cost-${randomBytes(3).toString('hex')}`;
process.env.LITS_KEY_PREFIX = prefix;
const redisUrl = serviceUrl('redis');
const TOKEN = 'cost-test-token-0123456789';

/** The commands clients sent (not those a Lua script ran) that touch this file's keys, in order. */
class CommandLog {
  private readonly seen: string[][] = [];
  private waiters: Array<{ marker: string; resolve: () => void }> = [];
  private constructor(private readonly monitor: Redis) {}

  static async start(url: string): Promise<CommandLog> {
    const monitor = await new Redis(url).monitor();
    const log = new CommandLog(monitor);
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      const waiter = log.waiters.find((w) => args.includes(w.marker));
      if (waiter) {
        log.waiters = log.waiters.filter((w) => w !== waiter);
        waiter.resolve();
        return;
      }
      if (source !== 'lua' && args.some((a) => a.startsWith(`${prefix}:`))) log.seen.push(args);
    });
    return log;
  }

  /**
   * The commands `run` caused. MONITOR reports commands in the order Redis ran them: once a marker
   * sent after them comes through, every one before it has too (before `run`: the earlier ones).
   */
  async during(run: () => Promise<void>, redis: Redis): Promise<string[][]> {
    await this.through(redis);
    this.seen.length = 0;
    await run();
    await this.through(redis);
    return [...this.seen];
  }

  private async through(redis: Redis): Promise<void> {
    const marker = `marker-${randomBytes(4).toString('hex')}`;
    const seen = new Promise<void>((resolve) => this.waiters.push({ marker, resolve }));
    await redis.echo(marker);
    await seen;
  }

  close(): void {
    this.monitor.disconnect();
  }
}

describe.skipIf(!redisUrl)('the cost of one submission (real Redis, real Fastify)', () => {
  let base: string;
  let app: CoordinatorApp;
  let commands: CommandLog;
  let probe: Redis;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'coord-cost-'));
    await mkdir(join(base, 'data', 'ds'), { recursive: true });
    app = await buildApp({
      redisUrl: redisUrl as string,
      tokens: [TOKEN],
      dataRoot: join(base, 'data'),
      home: join(base, 'home'),
      logger: createLogger('warn'),
      // Jobs are added when a test drains the outbox, so each test sees the commands of one step.
      queueFeeder: { settleMs: 3_600_000, maxDelayMs: 3_600_000, sweepMs: 3_600_000 },
    });
    await app.ready();
    // MONITOR starts with no command in flight (ioredis cannot tell its first lines from a reply).
    await app.ctx.feeder.drain();
    await app.ctx.queue.queue.waitUntilReady();
    commands = await CommandLog.start(redisUrl as string);
    probe = new Redis(redisUrl as string);
    // Each script's first call on a connection sends its source (EVAL), later ones its SHA.
    expect((await submit('loads-the-scripts')).statusCode).toBe(202);
    expect(await app.ctx.feeder.drain()).toBe(1);
  });
  afterEach(() => vi.restoreAllMocks());
  afterAll(async () => {
    commands?.close();
    probe?.disconnect();
    await app?.ctx.queue.queue.obliterate({ force: true });
    await app?.close();
    await rm(base, { recursive: true, force: true });
  });

  const submit = (key: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': key },
      payload: { 'dataset-path': 'ds', gpus: 1, max_epochs: 1, 'test-epochs': 1 },
    });
  const names = (sent: string[][]) =>
    sent.map((args) => args[0]?.toLowerCase()).map((name) => (name === 'eval' ? 'evalsha' : name));
  /** Commands other than the create script that name the experiment's record hash. */
  const recordReads = (sent: string[][], id: string) =>
    sent.filter((args) => args[0]?.toLowerCase() !== 'evalsha' && args.includes(`${prefix}:coord:exp:${id}`));

  it('a new submission: one round trip (the create script) and one realpath; its job comes with the next drain', async () => {
    const realpath = vi.spyOn(fs.realpathSync, 'native');
    let id = '';
    const sent = await commands.during(async () => {
      const res = await submit('new-one');
      expect(res.statusCode).toBe(202);
      id = res.json().id;
    }, probe);
    expect(names(sent)).toEqual(['evalsha']);
    // The data root holds no symbolic link: the dataset's real path under it is the whole check.
    expect(realpath.mock.calls.map(([path]) => path)).toEqual([join(base, 'data', 'ds')]);
    expect(await probe.zscore(`${prefix}:coord:unqueued`, id)).not.toBeNull();
    expect(await app.ctx.queue.queue.getJob(id)).toBeUndefined();

    // The drain: the outbox, the records' status and priority (one pipeline), the jobs (BullMQ's addBulk:
    // one script call per job, in one MULTI), the statuses again (one cancelled meanwhile loses its job),
    // the entries; then the outbox again, now empty.
    let added = 0;
    const drained = await commands.during(async () => {
      added = await app.ctx.feeder.drain();
    }, probe);
    expect(added).toBe(1);
    expect(names(drained)).toEqual(['zrange', 'hmget', 'evalsha', 'hmget', 'zrem', 'zrange']);
    expect(await probe.zscore(`${prefix}:coord:unqueued`, id)).toBeNull();
    expect((await app.ctx.queue.queue.getJob(id))?.opts.priority).toBe(51);
  });

  it('a repeated submission: its digest and status come back with the create script, the record is not read', async () => {
    const first = await submit('repeated');
    expect(first.statusCode).toBe(202);
    const { id } = first.json();

    // Still queued: the create script put it back into the outbox (its job may never have been added).
    await app.ctx.feeder.drain();
    const queued = await commands.during(async () => {
      const again = await submit('repeated');
      expect(again.statusCode).toBe(202);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json()).toMatchObject({ id, status: 'queued' });
    }, probe);
    expect(names(queued)).toEqual(['evalsha']);
    expect(recordReads(queued, id)).toEqual([]);
    expect(await probe.zscore(`${prefix}:coord:unqueued`, id)).not.toBeNull();

    // Cancelled: the create script's answer is the whole reply.
    const cancel = await app.inject({
      method: 'DELETE',
      url: `/v1/experiments/${id}`,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(cancel.json()).toMatchObject({ status: 'cancelled' });
    const cancelled = await commands.during(async () => {
      const again = await submit('repeated');
      expect(again.statusCode).toBe(202);
      expect(again.json()).toMatchObject({ id, status: 'cancelled' });
    }, probe);
    expect(names(cancelled)).toEqual(['evalsha']);
  });

  it('the submissions of one event-loop turn share one create script call, in order', async () => {
    const { store } = app.ctx;
    const { spec } = (await store.get((await submit('batch-template')).json().id as string)) ?? {};
    if (!spec) throw new Error('no stored spec');
    const chosen = `batch-${randomBytes(3).toString('hex')}`;
    let results: Awaited<ReturnType<typeof store.create>>[] = [];
    const sent = await commands.during(async () => {
      // Five creates issued in one turn, as a burst's requests are parsed: a key and an id each come twice.
      results = await Promise.all([
        store.create({ id: `${chosen}-a`, spec, priority: 50, idempotencyKey: 'batch-key' }),
        store.create({ id: `${chosen}-b`, spec, priority: 50, idempotencyKey: 'batch-key' }),
        store.create({ id: chosen, spec, priority: 60 }),
        store.create({ id: chosen, spec, priority: 60 }),
        store.create({ id: `${chosen}-c`, spec, priority: 50 }),
      ]);
    }, probe);
    expect(names(sent)).toEqual(['evalsha']);
    expect(results.map((r) => [r.id, r.created])).toEqual([
      [`${chosen}-a`, true],
      [`${chosen}-a`, false],
      [chosen, true],
      [chosen, false],
      [`${chosen}-c`, true],
    ]);
    expect(results[1]).toMatchObject({ status: 'queued' });
    expect(await probe.zcard(`${prefix}:coord:unqueued`)).toBeGreaterThanOrEqual(3);
  });

  it('a retry of a record stored with its spec fields in another order (an earlier version) is still a replay', async () => {
    const { id } = (await submit('field-order')).json() as { id: string };
    const key = `${prefix}:coord:exp:${id}`;
    const spec = JSON.parse((await probe.hget(key, 'spec')) as string) as Record<string, unknown>;
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(spec).reverse()));
    const digest = createHash('sha256').update(`{"spec":${reordered},"priority":50}`).digest('hex');
    await probe.hset(key, 'spec', reordered, 'digest', digest);
    const again = await submit('field-order');
    expect(again.statusCode).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(id);
  });

  it('a different submission under a used key is still a 409, a record without a digest still "being created"', async () => {
    expect((await submit('conflict')).statusCode).toBe(202);
    const other = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': 'conflict' },
      payload: { 'dataset-path': 'ds', gpus: 1, max_epochs: 2, 'test-epochs': 1 },
    });
    expect(other.statusCode).toBe(409);
    expect(other.json().message).toMatch(/Idempotency-Key was already used/);

    const id = (await submit('no-digest')).json().id as string;
    await probe.hdel(`${prefix}:coord:exp:${id}`, 'digest');
    const early = await submit('no-digest');
    expect(early.statusCode).toBe(409);
    expect(early.json().message).toMatch(/being created/);
  });
});
