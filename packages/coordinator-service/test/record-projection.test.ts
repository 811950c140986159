import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { resolveSpec, type ResolvedSpec } from '@lits-ddp/protocol';
import { ExperimentStore } from '../src/index.js';
import { recordChange, RecordProjection } from '../src/queue/record-projection.js';

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
