import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { RedisUnavailableError, redisOutageOf } from '../src/index.js';

const redisUrl = serviceUrl('redis');

/** A port nobody listens on: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What a real call threw. */
async function thrown(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe.skipIf(!redisUrl)('what counts as a Redis outage (real errors, real Redis)', () => {
  let up: Redis;
  let port: number;

  beforeAll(async () => {
    up = new Redis(redisUrl as string);
    await up.ping();
    port = await closedPort();
  });
  afterAll(() => up.disconnect());

  it('is an outage: a command given up after its retries, a closed connection, a refused connect', async () => {
    const down = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 20 });
    down.on('error', () => undefined); // reconnect attempts: the command's rejection is what is checked
    try {
      const gaveUp = await thrown(() => down.get('k'));
      expect((gaveUp as Error).name).toBe('MaxRetriesPerRequestError');
      expect(redisOutageOf(gaveUp, down)).toBeInstanceOf(RedisUnavailableError);
    } finally {
      down.disconnect();
    }

    const quitted = new Redis(redisUrl as string);
    await quitted.quit();
    const closed = await thrown(() => quitted.get('k'));
    expect((closed as Error).message).toBe('Connection is closed.');
    expect(redisOutageOf(closed, quitted)).toBeInstanceOf(RedisUnavailableError);

    // ioredis reports the socket's error as an event, and the connect call as a closed connection.
    const once = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
    const emitted = new Promise<Error>((resolve) => once.once('error', resolve));
    expect(redisOutageOf(await thrown(() => once.connect()), once)).toBeInstanceOf(RedisUnavailableError);
    const refused = await emitted;
    expect((refused as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(once.status).not.toBe('ready');
    expect(redisOutageOf(refused, once)?.cause).toBe(refused);
  });

  it('is not an outage: a message that mentions "connect", or a socket error of something else while Redis is up', async () => {
    expect(redisOutageOf(new Error('could not connect the run to its tracker'), up)).toBeUndefined();
    expect(redisOutageOf(new Error('Connection is closed by the tracker'), up)).toBeUndefined();
    const fetchRefused = await thrown(() => fetch(`http://127.0.0.1:${port}/`));
    expect(String((fetchRefused as Error).cause)).toMatch(/ECONNREFUSED/);
    expect(redisOutageOf(fetchRefused, up)).toBeUndefined();
    const socketRefused = await thrown(
      () =>
        new Promise((resolve, reject) =>
          connect(port, '127.0.0.1').once('error', reject).once('connect', resolve),
        ),
    );
    expect((socketRefused as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(up.status).toBe('ready');
    expect(redisOutageOf(socketRefused, up)).toBeUndefined();
    expect(redisOutageOf('ECONNREFUSED', up)).toBeUndefined();
  });
});
