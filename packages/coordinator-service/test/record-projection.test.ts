import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { resolveSpec, runEventXadd, type ResolvedSpec, type RunEvent } from '@lits-ddp/protocol';
import { buildApp, createLogger, ExperimentStore } from '../src/index.js';
import type { GenerationEntry } from '../src/queue/experiment-store.js';
import { recordChange, RecordProjection } from '../src/queue/record-projection.js';
import { toSummary } from '../src/server/routes/experiment-views.js';

process.env.LITS_KEY_PREFIX = `projection-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');

describe('recordChange: the experiment record follows the supervisor events', () => {
  const running = { status: 'running' as const, workers: ['w0', 'w1'] };

  it('restarting: the restart count, and the lost worker leaves the list', () => {
    expect(
      recordChange({ type: 'status', status: 'restarting', restarts: 1, lost: ['w1'] }, running, 5),
    ).toEqual({ set: { status: 'restarting', restarts: 1, workers: ['w0'] } });
  });

  it('waiting: what is missing, since the first report of one wait', () => {
    const waiting = { type: 'waiting', generation: 2, needed: 2, free: 1, missing: 1, message: 'm' } as const;
    const first = recordChange(waiting, { status: 'restarting', workers: ['w0'] }, 5);
    expect(first).toEqual({
      set: { waitingForWorkers: { needed: 2, free: 1, missing: 1, message: 'm', since: 5 } },
    });
    const later = recordChange(
      { ...waiting, free: 0, missing: 2 },
      { status: 'restarting', waitingForWorkers: { needed: 2, free: 1, missing: 1, message: 'm', since: 5 } },
      9,
    );
    expect(later?.set.waitingForWorkers).toMatchObject({ missing: 2, since: 5 });
  });

  it('running: the new ranks, and the wait is over', () => {
    const rec = {
      status: 'restarting' as const,
      workers: ['w0'],
      waitingForWorkers: { needed: 2, free: 1, missing: 1, message: 'm', since: 5 },
    };
    expect(
      recordChange({ type: 'status', status: 'running', restarts: 1, workers: ['w0', 'w2'] }, rec, 9),
    ).toEqual({
      set: { status: 'running', restarts: 1, workers: ['w0', 'w2'] },
      unset: ['waitingForWorkers'],
    });
  });

  it("the run's own end changes nothing: the outcome, with its error, is written once by the supervisor", () => {
    for (const status of ['finished', 'failed', 'cancelled'] as const) {
      const event = { type: 'status', status, restarts: 0, message: 'could not create the Job' } as const;
      expect(recordChange(event, running, 1)).toBeUndefined();
    }
  });

  it('leaves a record that is over as it is', () => {
    const change = recordChange(
      { type: 'status', status: 'running', restarts: 0 },
      { status: 'cancelled' },
      1,
    );
    expect(change).toBeUndefined();
    expect(recordChange({ type: 'log', rank: 0, level: 'info', message: 'x' }, running, 1)).toBeUndefined();
  });
});

/** A spec for three workers (one micro-batch each) that may shrink to two. */
const SPEC3 = {
  'dataset-path': 'phantoms',
  workers: 3,
  'global-batch-size': 6,
  max_epochs: 4,
  'test-epochs': 2,
};

type GenerationEvent = Extract<RunEvent, { type: 'generation' }>;
const generationEvent = (
  generation: number,
  workers: string[],
  change: GenerationEvent['change'],
  resumeEpoch: number,
  reason = `reason ${generation}`,
): GenerationEvent => ({
  type: 'generation',
  generation,
  worldSize: workers.length,
  workers,
  change,
  reason,
  resumeEpoch,
});

describe('recordChange: generations', () => {
  const entryOf = ({ type: _type, ...e }: GenerationEvent, at: number): GenerationEntry => ({ ...e, at });

  it("a generation event adds the generation (when, from the stream id) and sets the ranks' workers", () => {
    const first = generationEvent(1, ['w0', 'w1', 'w2'], 'start', 0);
    expect(recordChange(first, { status: 'preparing' }, 7)).toEqual({
      set: { generations: [entryOf(first, 7)], workers: ['w0', 'w1', 'w2'] },
    });
    const shrink = generationEvent(2, ['w0', 'w2'], 'shrink', 2, 'w1 lost; no replacement in 30 s');
    const rec = { status: 'restarting' as const, workers: ['w0', 'w2'], generations: [entryOf(first, 7)] };
    expect(recordChange(shrink, rec, 9)).toEqual({
      set: { generations: [entryOf(first, 7), entryOf(shrink, 9)], workers: ['w0', 'w2'] },
    });
  });

  it("the summary's world size is the latest generation's; none before the first", async () => {
    const resolved = resolveSpec({ ...SPEC3, 'min-workers': 2 });
    if (!resolved.ok) throw new Error('spec');
    const base = { id: 'exp-ws', status: 'running' as const, priority: 50, spec: resolved.spec };
    const rec = { ...base, submittedAt: 1, done: false, restarts: 1 };
    expect(toSummary(rec).worldSize).toBeUndefined();
    const generations = [entryOf(generationEvent(1, ['a', 'b', 'c'], 'start', 0), 1)];
    generations.push(entryOf(generationEvent(2, ['a', 'c'], 'shrink', 1), 2));
    expect(toSummary({ ...rec, generations })).toMatchObject({ workers: 3, worldSize: 2 });
  });

  it('ignores a generation the record already has (the stream read again after a takeover)', () => {
    const known = [generationEvent(1, ['w0'], 'start', 0), generationEvent(2, ['w0', 'w1'], 'grow', 1)];
    const rec = {
      status: 'running' as const,
      workers: ['w0', 'w1'],
      generations: known.map((e, i) => entryOf(e, i)),
    };
    expect(recordChange(generationEvent(1, ['w0'], 'start', 0), rec, 20)).toBeUndefined();
    expect(recordChange(generationEvent(2, ['w0', 'w1'], 'grow', 1), rec, 21)).toBeUndefined();
  });

  it('keeps the newest 50 generations', () => {
    const generations = Array.from({ length: 50 }, (_, i) =>
      entryOf(generationEvent(i + 1, ['w0'], i === 0 ? 'start' : 'restart', i), i),
    );
    const change = recordChange(
      generationEvent(51, ['w0'], 'restart', 50),
      { status: 'running', generations },
      99,
    );
    const kept = change?.set.generations ?? [];
    expect(kept).toHaveLength(50);
    expect(kept.map((g) => g.generation)).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
  });

  it('leaves the record of a run that is over as it is', () => {
    expect(recordChange(generationEvent(3, ['w0'], 'restart', 2), { status: 'failed' }, 1)).toBeUndefined();
  });
});

describe.skipIf(!redisUrl)('RecordProjection: events in stream order (real Redis)', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl as string);
  });
  afterAll(() => redis.disconnect());

  it("keeps the newest state when the stream's older events arrive after the supervisor's own", async () => {
    const store = new ExperimentStore(redis);
    const resolved = resolveSpec({ 'dataset-path': 'phantoms', workers: 2 });
    if (!resolved.ok) throw new Error('spec');
    const spec: ResolvedSpec = resolved.spec;
    const { id } = await store.create({ id: 'exp-order', spec, priority: 50 });
    const projection = new RecordProjection(store, id, pino({ level: 'silent' }));
    // Handed over when published (ids 5-0 and 6-0); the older ones then come as the stream is read from its start.
    projection.apply({ type: 'waiting', generation: 1, needed: 2, free: 0, missing: 2, message: 'm' }, '5-0');
    projection.apply({ type: 'status', status: 'running', restarts: 0, workers: ['w0', 'w1'] }, '6-0');
    projection.apply({ type: 'status', status: 'queued', restarts: 0 }, '1-0');
    projection.apply({ type: 'status', status: 'preparing', restarts: 0 }, '2-0');
    await projection.flush();
    const rec = await store.get(id);
    expect(rec).toMatchObject({ status: 'running', workers: ['w0', 'w1'] });
    expect(rec?.waitingForWorkers).toBeUndefined();
  });
});

describe.skipIf(!redisUrl)('the REST record of a run whose size changes (real Redis, real Fastify)', () => {
  const TOKEN = 'projection-token-0123456789';
  let redis: Redis;
  let home: string;
  let app: Awaited<ReturnType<typeof buildApp>>;
  beforeAll(async () => {
    redis = new Redis(redisUrl as string);
    home = await mkdtemp(join(tmpdir(), 'projection-'));
    app = await buildApp({
      redisUrl: redisUrl as string,
      tokens: [TOKEN],
      dataRoot: home,
      home,
      logger: createLogger('silent'),
    });
  });
  afterAll(async () => {
    await app?.close();
    redis.disconnect();
    await rm(home, { recursive: true, force: true });
  });

  const step = (generation: number, rank: number, epoch: number): RunEvent => ({
    type: 'progress',
    generation,
    rank,
    epoch,
    step: 0,
    stepsPerEpoch: 4,
    loss: 0.5,
    timings: { computeMs: 1, allReduceMs: 1, dataMs: 1, otherMs: 0 },
  });

  it('shows each generation, the live workers, and resuming until the new ranks report a step', async () => {
    const store = new ExperimentStore(redis);
    const resolved = resolveSpec({ ...SPEC3, 'min-workers': 2 });
    if (!resolved.ok) throw new Error('spec');
    const { id } = await store.create({
      id: `exp-gen-${randomBytes(3).toString('hex')}`,
      spec: resolved.spec,
      priority: 50,
    });
    const projection = new RecordProjection(store, id, pino({ level: 'silent' }));
    // As the supervisor does: publish, then hand the event (with its stream id) to the projection.
    const publish = async (...events: RunEvent[]): Promise<void> => {
      for (const event of events)
        projection.apply(event, (await redis.xadd(...runEventXadd(id, event))) as string);
      await projection.flush();
    };
    const detail = async (): Promise<Record<string, unknown>> => {
      const reply = await app.inject({
        url: `/v1/experiments/${id}`,
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(reply.statusCode).toBe(200);
      return reply.json();
    };

    await publish(generationEvent(1, ['w0', 'w1', 'w2'], 'start', 0, 'the first generation'), {
      type: 'status',
      status: 'running',
      restarts: 0,
      generation: 1,
      workers: ['w0', 'w1', 'w2'],
    });
    expect(await detail()).toMatchObject({
      status: 'running',
      worldSize: 3,
      workerIds: ['w0', 'w1', 'w2'],
      resuming: { generation: 1, worldSize: 3, resumeEpoch: 0 },
    });
    await publish(step(1, 0, 2), step(1, 1, 2), step(1, 2, 2));
    const first = await detail();
    expect(first.resuming).toBeUndefined();
    expect(first.progress).toMatchObject({ epoch: 2, ranks: [{ rank: 0 }, { rank: 1 }, { rank: 2 }] });

    const reason = 'w1 lost (no heartbeat); no free worker replaced it in 30 s';
    await publish(
      { type: 'status', status: 'restarting', restarts: 1, generation: 2, lost: ['w1'] },
      {
        type: 'waiting',
        generation: 2,
        needed: 3,
        free: 0,
        missing: 1,
        message: 'waiting for 1 more worker',
      },
    );
    expect(await detail()).toMatchObject({
      status: 'restarting',
      worldSize: 3,
      workerIds: ['w0', 'w2'],
      waitingForWorkers: { needed: 3, missing: 1 },
    });
    await publish(generationEvent(2, ['w0', 'w2'], 'shrink', 2, reason), {
      type: 'status',
      status: 'running',
      restarts: 1,
      generation: 2,
      workers: ['w0', 'w2'],
    });
    const resuming = await detail();
    expect(resuming).toMatchObject({
      status: 'running',
      worldSize: 2,
      workerIds: ['w0', 'w2'],
      resuming: { generation: 2, worldSize: 2, resumeEpoch: 2 },
      generations: [
        { generation: 1, worldSize: 3, workers: ['w0', 'w1', 'w2'], change: 'start', resumeEpoch: 0 },
        { generation: 2, worldSize: 2, workers: ['w0', 'w2'], change: 'shrink', reason, resumeEpoch: 2 },
      ],
    });
    // No progress while resuming: the old generation's three ranks are gone, and the new ones have none yet.
    expect(resuming.progress).toBeUndefined();
    expect(resuming.waitingForWorkers).toBeUndefined();
    const generations = resuming.generations as Array<{ at: string }>;
    expect(generations.every((g) => !Number.isNaN(Date.parse(g.at)))).toBe(true);

    await publish(step(2, 0, 2), step(2, 1, 2));
    const running = await detail();
    expect(running.resuming).toBeUndefined();
    expect(running.progress).toMatchObject({ epoch: 2, ranks: [{ rank: 0 }, { rank: 1 }] });
    expect((running.progress as { ranks: unknown[] }).ranks).toHaveLength(2);
  });
});
