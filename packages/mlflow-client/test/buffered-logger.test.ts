import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowServer } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import {
  BufferedMetricLogger,
  MlflowApiError,
  MlflowClient,
  MlflowLoggerOverflowError,
  MlflowRejectedEntryError,
} from '../src/index.js';

// The outage test owns its server so it can stop and restart it on the same port.
const haveMlflow = serviceUrl('mlflow') !== undefined;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A real client (to the real server) that also notes when each log-batch call starts. */
class CountingClient extends MlflowClient {
  readonly batchCalls: number[] = [];
  override async logBatch(...args: Parameters<MlflowClient['logBatch']>): Promise<void> {
    this.batchCalls.push(Date.now());
    await super.logBatch(...args);
  }
}

async function newRun(client: MlflowClient): Promise<string> {
  const exp = await client.getOrCreateExperiment(`buffered-${randomUUID()}`);
  return (await client.createRun({ experimentId: exp.experimentId, runName: 'buffered' })).info.runId;
}

describe.skipIf(!haveMlflow)('BufferedMetricLogger', () => {
  let server: MlflowServer;
  let client: MlflowClient;

  beforeAll(async () => {
    server = await MlflowServer.start();
    client = new MlflowClient({ trackingUri: server.url, timeoutMs: 30_000 });
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('delivers every metric exactly once and in order across a 10 s outage', async () => {
    const runId = await newRun(client);
    const errors: string[] = [];
    const logger = new BufferedMetricLogger(client, runId, {
      batchSize: 200,
      flushIntervalMs: 200,
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      onError: (e) => errors.push(e.name),
    });
    logger.logParams({ phase: 'outage' });
    let step = 0;
    const stream = setInterval(() => {
      for (let i = 0; i < 5; i++, step++) {
        logger.log('loss', 1 / (step + 1), step);
        logger.log('iou', step / 1e4, step);
      }
    }, 20);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await server.stop();
      const stoppedAt = step;
      await new Promise((r) => setTimeout(r, 10_000));
      expect(logger.pending).toBeGreaterThan(0);
      await server.start();
      expect(step).toBeGreaterThan(stoppedAt);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      clearInterval(stream);
    }
    const result = await logger.close(100_000);
    expect(result).toEqual({ delivered: true, timedOut: false, pending: 0, unconfirmed: 0, rejected: [] });
    expect(errors.length).toBeGreaterThan(0);

    for (const key of ['loss', 'iou']) {
      const history = await client.getMetricHistory(runId, key);
      expect(history.map((m) => m.step)).toEqual(Array.from({ length: step }, (_, i) => i));
      const timestamps = history.map((m) => m.timestamp);
      expect(timestamps).toEqual([...timestamps].sort((x, y) => x - y));
      expect(new Set(timestamps).size).toBe(step);
    }
    const run = await client.getRun(runId);
    expect(run.data.params).toEqual([{ key: 'phase', value: 'outage' }]);
  }, 180_000); // a busy machine slows the catch-up of ~10,000 points

  it('bounds memory: refuses new entries with a clear error instead of dropping', async () => {
    const runId = await newRun(client);
    await server.stop();
    const logger = new BufferedMetricLogger(client, runId, {
      maxPending: 100,
      flushIntervalMs: 50,
      initialBackoffMs: 50,
    });
    try {
      for (let i = 0; i < 100; i++) logger.log('m', i, i);
      expect(() => logger.log('m', 100, 100)).toThrow(MlflowLoggerOverflowError);
      expect(() => logger.log('m', 100, 100)).toThrow(/refusing more rather than dropping/);
      const flushed = await logger.flush(500);
      expect(flushed).toMatchObject({ delivered: false, timedOut: true, pending: 100 });
      expect(flushed.lastError).toMatch(/unreachable/);
      await server.start();
      expect(await logger.flush(30_000)).toMatchObject({ delivered: true, timedOut: false, pending: 0 });
      expect((await client.getMetricHistory(runId, 'm')).map((m) => m.value)).toEqual(
        Array.from({ length: 100 }, (_, i) => i),
      );
    } finally {
      await server.start();
      await logger.close(10_000);
    }
  });

  it('close() gives up at its deadline and says what was left', async () => {
    const runId = await newRun(client);
    await server.stop();
    try {
      const logger = new BufferedMetricLogger(client, runId, { initialBackoffMs: 50 });
      logger.log('x', 1, 0);
      logger.log('x', 2, 1);
      const started = Date.now();
      const result = await logger.close(300);
      expect(Date.now() - started).toBeLessThan(3000); // by the deadline (plus scheduling), not later
      expect(result).toMatchObject({ delivered: false, timedOut: true, pending: 2 });
      expect(() => logger.log('x', 3, 2)).toThrow(/closed/);
    } finally {
      await server.start();
    }
  });

  it('delivers a slow trickle within about a flush interval, with no flush() call', async () => {
    const runId = await newRun(client);
    const counting = new CountingClient({ trackingUri: server.url, timeoutMs: 30_000 });
    const logger = new BufferedMetricLogger(counting, runId); // defaults: 1000 entries or every 1 s
    const n = 20;
    const loggedAt: number[] = [];
    const arrivedAt = new Map<number, number>();
    let polling = true;
    const poll = (async () => {
      while (polling) {
        for (const m of await client.getMetricHistory(runId, 'trickle'))
          if (!arrivedAt.has(m.step)) arrivedAt.set(m.step, Date.now());
        await sleep(100);
      }
    })();
    try {
      for (let step = 0; step < n; step++) {
        loggedAt.push(Date.now());
        logger.log('trickle', step, step);
        await sleep(300);
      }
      const loggingEnded = Date.now();
      const until = Date.now() + 15_000;
      while (arrivedAt.size < n && Date.now() < until) await sleep(50);
      // At a 1 s cadence consecutive sends start ~1 s apart (or right after a request slower than that).
      // A tick skipped after each send left 2 s gaps. The bound leaves room for a slow request.
      const sends = counting.batchCalls.filter((t) => t <= loggingEnded);
      expect(sends.length).toBeGreaterThanOrEqual(4);
      const gaps = sends.slice(1).map((t, i) => t - (sends[i] as number));
      expect(Math.max(...gaps)).toBeLessThan(1900);
      const lags = loggedAt.map((t, step) => (arrivedAt.get(step) ?? Infinity) - t);
      expect(Math.max(...lags)).toBeLessThan(2500); // 1 s + one request, with room for a busy machine
    } finally {
      polling = false;
      await poll;
      await logger.close(10_000);
    }
  });

  it('flush() and close() return by their deadline while the server hangs mid-request', async () => {
    const runId = await newRun(client);
    const pid = server.pid;
    if (pid === undefined) throw new Error('the MLflow server has no pid');
    // SIGSTOP on its process group: connections are still accepted, requests get no answer.
    const freeze = (): boolean => process.kill(-pid, 'SIGSTOP');
    const thaw = (): boolean => process.kill(-pid, 'SIGCONT');
    const logger = new BufferedMetricLogger(client, runId, { flushIntervalMs: 60_000 }); // only flush/close send
    try {
      logger.log('hang', 1, 0);
      freeze();
      let started = Date.now();
      const flushed = await logger.flush(500);
      expect(Date.now() - started).toBeLessThan(3000); // the request itself would wait the client's 30 s
      expect(flushed).toMatchObject({ delivered: false, timedOut: true, pending: 1, unconfirmed: 1 });
      thaw();
      // flush() left the request running: its late answer counts, and the point is there once.
      expect(await logger.flush(30_000)).toMatchObject({ delivered: true, pending: 0, unconfirmed: 0 });
      expect((await client.getMetricHistory(runId, 'hang')).map((m) => m.step)).toEqual([0]);

      logger.log('hang', 2, 1);
      freeze();
      started = Date.now();
      const closed = await logger.close(500);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(closed).toMatchObject({ delivered: false, timedOut: true, pending: 1, unconfirmed: 1 });
      expect(closed.lastError).toMatch(/abandoned/);
    } finally {
      thaw();
    }
    // The abandoned request may still be applied once the server runs again: all of it or none, once.
    await sleep(1000);
    const steps = (await client.getMetricHistory(runId, 'hang')).map((m) => m.step);
    expect([[0], [0, 1]]).toContainEqual(steps);
  });

  it('drops only what MLflow refuses (a conflicting param, a bad key) and delivers the rest in order', async () => {
    const runId = await newRun(client);
    const firstErrors: Error[] = [];
    const first = new BufferedMetricLogger(client, runId, {
      flushIntervalMs: 200,
      onError: (e) => firstErrors.push(e),
    });
    first.logParams({ lr: 0.1, epochs: 3 });
    for (let step = 0; step < 5; step++) first.log('loss', 1 / (step + 1), step);
    expect(await first.flush(10_000)).toMatchObject({ delivered: true, pending: 0 });

    // The same logger changes a param: its client remembers the value and refuses before sending.
    first.logParams({ lr: 0.2 });
    for (let step = 5; step < 10; step++) first.log('loss', 1 / (step + 1), step);
    // Another process (a fresh client) changes it too: the server refuses, as it does a bad key.
    const secondErrors: Error[] = [];
    const second = new BufferedMetricLogger(new MlflowClient({ trackingUri: server.url }), runId, {
      flushIntervalMs: 200,
      onError: (e) => secondErrors.push(e),
    });
    second.logParams({ lr: 0.3, batch: 4 });
    for (let step = 0; step < 5; step++) second.log('acc', step / 10, step);
    second.log('bad!key', 1, 0);
    for (let step = 5; step < 10; step++) second.log('acc', step / 10, step);

    const firstResult = await first.close(30_000);
    const secondResult = await second.close(30_000);
    expect(firstResult).toMatchObject({ delivered: false, timedOut: false, pending: 0 });
    expect(firstResult.rejected.map((e) => [e.kind, e.key, e.value])).toEqual([['param', 'lr', '0.2']]);
    expect(firstResult.rejected[0]?.message).toMatch(/param "lr".*already logged as "0\.1"/);
    expect(secondResult).toMatchObject({ delivered: false, timedOut: false, pending: 0 });
    expect(secondResult.rejected.map((e) => [e.kind, e.key])).toEqual([
      ['param', 'lr'],
      ['metric', 'bad!key'],
    ]);
    const [conflict, badKey] = secondResult.rejected;
    expect(conflict?.reason).toMatch(/already logged on the server as "0\.1"/);
    expect(conflict?.cause).toBeInstanceOf(MlflowApiError);
    expect((badKey?.cause as MlflowApiError).errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(badKey?.reason).toMatch(/Names may only contain/);
    // onError heard of each refusal as it happened.
    const refusalsOf = (errors: Error[]): string[] =>
      errors.flatMap((e) => (e instanceof MlflowRejectedEntryError ? [e.key] : []));
    expect(refusalsOf(firstErrors)).toEqual(['lr']);
    expect(refusalsOf(secondErrors)).toEqual(['lr', 'bad!key']);

    const run = await client.getRun(runId);
    expect(Object.fromEntries(run.data.params.map((p) => [p.key, p.value]))).toEqual({
      lr: '0.1',
      epochs: '3',
      batch: '4',
    });
    const steps = Array.from({ length: 10 }, (_, i) => i);
    expect((await client.getMetricHistory(runId, 'loss')).map((m) => m.step)).toEqual(steps);
    expect((await client.getMetricHistory(runId, 'acc')).map((m) => m.step)).toEqual(steps);
    expect(await client.getMetricHistory(runId, 'bad!key').catch(() => [])).toEqual([]);
  });
});
