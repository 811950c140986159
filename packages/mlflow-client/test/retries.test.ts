import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '@lits-ddp/local-services';
import { BufferedMetricLogger, MlflowClient, MlflowNetworkError } from '../src/index.js';

// No MLflow needed: a refused port and a socket that never answers are all these tests use.

describe('retries and cancellation', () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };
  afterEach(() => {
    process.off('warning', onWarning);
    warnings.length = 0;
  });

  it('retries many times against a refused port without piling up abort listeners', async () => {
    process.on('warning', onWarning);
    const port = await freePort(); // nothing listens there
    const client = new MlflowClient({ trackingUri: `http://127.0.0.1:${port}` });
    const logger = new BufferedMetricLogger(client, 'run-x', {
      flushIntervalMs: 10,
      initialBackoffMs: 1,
      maxBackoffMs: 2,
    });
    logger.log('m', 1, 0);
    const until = Date.now() + 20_000;
    while (logger.failures < 40 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(logger.failures).toBeGreaterThanOrEqual(40);
    const closed = await logger.close(50);
    expect(closed).toMatchObject({ delivered: false, timedOut: true, pending: 1 });
    expect(closed.lastError).toMatch(/ECONNREFUSED/);
    await new Promise((r) => setImmediate(r)); // warnings are emitted on a later tick
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  describe('a server that never answers', () => {
    let server: Server;
    let uri: string;
    afterEach(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    const listen = async (): Promise<void> => {
      server = createServer(() => {
        // holds every request open
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };

    it("ends the request when the caller's signal aborts", async () => {
      await listen();
      const client = new MlflowClient({ trackingUri: uri, timeoutMs: 60_000 });
      const started = Date.now();
      const err = await client.getRun('x', { signal: AbortSignal.timeout(200) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MlflowNetworkError);
      expect((err as MlflowNetworkError).delivered).toBe('unknown');
      expect((err as MlflowNetworkError).reason).toBe('cancelled by the caller');
      expect(Date.now() - started).toBeLessThan(10_000); // not the 60 s request timeout
    });

    it('ends the request at the transport timeout and says so', async () => {
      await listen();
      const client = new MlflowClient({ trackingUri: uri, timeoutMs: 200 });
      const err = await client.getRun('x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MlflowNetworkError);
      expect((err as MlflowNetworkError).reason).toBe('no answer within 200 ms');
    });
  });
});
