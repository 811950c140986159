import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowServer } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { BufferedMetricLogger, MlflowClient, MlflowLoggerOverflowError } from '../src/index.js';

// The outage test owns its server so it can stop and restart it on the same port.
const haveMlflow = serviceUrl('mlflow') !== undefined;

async function newRun(client: MlflowClient): Promise<string> {
  const exp = await client.getOrCreateExperiment(`buffered-${randomUUID()}`);
  return (await client.createRun({ experimentId: exp.experimentId, runName: 'buffered' })).info.runId;
}

describe.skipIf(!haveMlflow)('BufferedMetricLogger', () => {
  let server: MlflowServer;
  let client: MlflowClient;

  beforeAll(async () => {
    server = await MlflowServer.start();
    client = new MlflowClient({ trackingUri: server.url, timeoutMs: 5000 });
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('delivers every metric exactly once and in order across a 10 s outage', async () => {
    const runId = await newRun(client);
    const errors: string[] = [];
    const logger = new BufferedMetricLogger(client, runId, {
      batchSize: 50,
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
    const result = await logger.close(60_000);
    expect(result).toEqual({ delivered: true, pending: 0 });
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
  });

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
      expect(flushed.delivered).toBe(false);
      expect(flushed.pending).toBe(100);
      expect(flushed.lastError).toMatch(/unreachable/);
      await server.start();
      expect(await logger.flush(30_000)).toEqual({ delivered: true, pending: 0 });
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
      const result = await logger.close(300);
      expect(result.delivered).toBe(false);
      expect(result.pending).toBe(2);
      expect(() => logger.log('x', 3, 2)).toThrow(/closed/);
    } finally {
      await server.start();
    }
  });
});
