// A `lits worker` process through Redis outages: one line when Redis goes, one when it is back, never ioredis's
// per-attempt "Unhandled error event" stack; and a SIGTERM while Redis is gone still ends the process.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer, ResettingPort } from '@lits-ddp/local-services';
import { workerKeys } from '@lits-ddp/protocol';

const WORKER = fileURLToPath(new URL('./fixtures/worker-process.mjs', import.meta.url));
const BEGIN = /Redis unreachable \((worker|worker inbox|heartbeat) connection: [^)]+\)/g;
const END = /Redis reachable again after \d+\.\d s/g;

/** A worker process and everything it printed, with waits on what it prints. */
class WorkerProcess {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;
  private readonly waiters = new Set<() => void>();

  constructor(
    redisUrl: string,
    readonly id: string,
  ) {
    this.child = spawn(process.execPath, [WORKER, '--id', id, '--engine', 'cpu', '--heartbeat-s', '1'], {
      env: { ...process.env, REDIS_URL: redisUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const take = (d: Buffer): void => {
      this.output += d.toString();
      for (const w of this.waiters) w();
    };
    this.child.stdout?.on('data', take);
    this.child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  count(pattern: RegExp): number {
    return this.output.match(pattern)?.length ?? 0;
  }

  /** Resolves once the output matches `pattern`; fails with the output after `ms`. */
  waitFor(pattern: RegExp, ms = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!new RegExp(pattern.source).test(this.output)) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`worker output did not show ${pattern} within ${ms} ms:\n${this.output}`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

describe('a lits worker through a Redis outage (real redis-server, real worker process)', () => {
  let redis: RedisServer;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start({ install: false });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await redis.dispose();
  });

  const startWorker = async (): Promise<WorkerProcess> => {
    await redis.start();
    const worker = new WorkerProcess(redis.url, `outage-${randomBytes(4).toString('hex')}`);
    workers.push(worker);
    await worker.waitFor(/ready: /, 60_000);
    return worker;
  };

  it('logs the outage once when it begins and once when it ends, through many reconnect attempts', async () => {
    const worker = await startWorker();
    await redis.stop();
    await worker.waitFor(BEGIN);
    const port = await ResettingPort.open(redis.port);
    try {
      // About ten failed attempts of each of its three connections (worker, inbox, heartbeat thread).
      await port.waitForAttempts(30);
    } finally {
      await port.close();
    }
    expect(worker.count(BEGIN)).toBe(1);
    await redis.start();
    await worker.waitFor(END);
    // Named: which connection failed first, and why (refused, or reset by the stopping server).
    expect(worker.output).toMatch(
      new RegExp(
        `Redis unreachable \\((worker|worker inbox|heartbeat) connection: ` +
          `(connect|read|write) (ECONNREFUSED|ECONNRESET|EPIPE)( 127\\.0\\.0\\.1:${redis.port})?\\)`,
      ),
    );
    expect(worker.count(BEGIN)).toBe(1);
    expect(worker.count(END)).toBe(1);
    expect(worker.output).not.toMatch(/Unhandled error event/);
    // It serves on: the emptied Redis gets its registration back.
    const check = new Redis(redis.url);
    try {
      for (let i = 0; i < 100 && (await check.sismember(workerKeys.registry(), worker.id)) === 0; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(await check.sismember(workerKeys.registry(), worker.id)).toBe(1);
    } finally {
      check.disconnect();
    }
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  });

  it('exits 0 within seconds of a SIGTERM while Redis is down, saying it could not deregister', async () => {
    const worker = await startWorker();
    await redis.stop();
    const port = await ResettingPort.open(redis.port);
    try {
      // The worker has noticed: its connections are retrying.
      await port.waitForAttempts(3);
      const signalled = Date.now();
      worker.child.kill('SIGTERM');
      const exitTimer = setTimeout(() => worker.child.kill('SIGKILL'), 10_000);
      const code = await worker.exited;
      clearTimeout(exitTimer);
      const seconds = (Date.now() - signalled) / 1000;
      process.stdout.write(`worker exited ${seconds.toFixed(2)} s after SIGTERM with Redis down\n`);
      expect(worker.child.signalCode).toBeNull();
      expect(code).toBe(0);
      expect(seconds).toBeLessThan(10);
      expect(worker.output).toMatch(/could not deregister within 2 s: Redis unreachable/);
      expect(worker.output).not.toMatch(/Unhandled error event/);
    } finally {
      await port.close();
    }
  });
});
