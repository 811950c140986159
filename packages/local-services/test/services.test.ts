import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RedisServer, startServices } from '../src/index.js';
import { serviceUrl } from '../src/vitest.js';

const fixture = fileURLToPath(new URL('./fixtures/services-then-fail.mjs', import.meta.url));

/** Running, not a zombie: an orphan reaped late by a container's PID 1 still answers kill(pid, 0). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** One RESP command over a raw socket. */
function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    socket.once('error', reject);
    socket.on('data', (d) => {
      reply += d.toString();
      if (/\r\n$/.test(reply) && !/^\$\d+\r\n$/.test(reply)) {
        socket.end();
        resolve(reply);
      }
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

interface Report {
  name: string;
  pid: number;
  dir: string;
  healthy: boolean;
}

async function runFixture(
  mode: 'throw' | 'signal',
): Promise<{ report: Report[]; code: number | null; signal: string | null }> {
  const child = spawn(process.execPath, [fixture, mode === 'throw' ? 'throw' : 'wait'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const report = await new Promise<Report[]>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] as string) as Report[]);
    });
    child.once('exit', () => reject(new Error(`fixture exited early: ${err}`)));
  });
  if (mode === 'signal') child.kill('SIGTERM');
  const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
    child.once('exit', (c, s) => r([c, s])),
  );
  return { report, code, signal };
}

const haveBoth = serviceUrl('redis') !== undefined && serviceUrl('mlflow') !== undefined;

describe.skipIf(!haveBoth)('local services', () => {
  it('starts both servers, reports health and exports their URLs', async () => {
    const services = await startServices({ redis: true, mlflow: true, reuseFromEnv: false });
    try {
      expect(await services.redis?.healthy()).toBe(true);
      expect(await services.mlflow?.healthy()).toBe(true);
      expect(services.env.REDIS_URL).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      expect(services.env.MLFLOW_TRACKING_URI).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(
        `${services.env.MLFLOW_TRACKING_URI}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default`,
      );
      expect(res.status).toBe(200);
    } finally {
      await services.dispose();
    }
    expect(existsSync(services.redis?.dir ?? '')).toBe(false);
    expect(existsSync(services.mlflow?.dir ?? '')).toBe(false);
  });

  it('keeps data across a restart on the same port when AOF is on', async () => {
    const redis = await RedisServer.start({ aof: true });
    try {
      expect(await redisCommand(redis.port, 'SET', 'k', 'survives')).toBe('+OK\r\n');
      await new Promise((r) => setTimeout(r, 1100)); // appendfsync everysec
      await redis.stop();
      expect(await redis.healthy()).toBe(false);
      await redis.start();
      expect(await redisCommand(redis.port, 'GET', 'k')).toBe('$8\r\nsurvives\r\n');
    } finally {
      await redis.dispose();
    }
  });

  it('without AOF a restart starts empty', async () => {
    const redis = await RedisServer.start();
    try {
      await redisCommand(redis.port, 'SET', 'k', 'v');
      await redis.stop();
      await redis.start();
      expect(await redisCommand(redis.port, 'GET', 'k')).toBe('$-1\r\n');
    } finally {
      await redis.dispose();
    }
  });

  for (const mode of ['throw', 'signal'] as const) {
    it(`leaves no process or temp folder behind when the user ${mode === 'throw' ? 'throws' : 'is killed by SIGTERM'}`, async () => {
      const { report, code, signal } = await runFixture(mode);
      expect(report.map((r) => [r.name, r.healthy])).toEqual([
        ['redis', true],
        ['mlflow', true],
      ]);
      if (mode === 'throw') expect(code).toBe(1);
      else expect(signal).toBe('SIGTERM');
      // The servers are SIGKILLed synchronously on exit; give the kernel a moment to reap.
      await new Promise((r) => setTimeout(r, 500));
      for (const r of report) {
        expect(alive(r.pid), `${r.name} pid ${r.pid}`).toBe(false);
        expect(existsSync(r.dir), r.dir).toBe(false);
      }
    });
  }
});
