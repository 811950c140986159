// A `lits serve` process through a Redis outage: one structured line when Redis goes and one when it is back, for
// all of its connections (API, queue, processor, BullMQ worker) together, through many reconnect attempts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, RedisServer, ResettingPort } from '@lits-ddp/local-services';

const SERVE = fileURLToPath(new URL('./fixtures/serve-process.mjs', import.meta.url));
const TOKEN = 'outage-test-token-0123456789';

interface LogLine {
  level: number;
  msg: string;
  redisRole?: string;
  reason?: string;
  downS?: number;
}

/** A coordinator process and what it printed: pino's JSON lines on stdout, anything else on stderr. */
class ServeProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  raw = '';
  readonly exited: Promise<number | null>;
  private readonly waiters = new Set<() => void>();

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [SERVE, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      this.raw += d.toString();
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (line.startsWith('{')) this.lines.push(JSON.parse(line) as LogLine);
      }
      this.notify();
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.raw += d.toString();
      this.notify();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  linesMatching(pattern: RegExp): LogLine[] {
    return this.lines.filter((l) => pattern.test(l.msg));
  }

  /** Resolves once `seen()` holds; fails with the output after `ms`. */
  waitFor(what: string, seen: () => boolean, ms = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!seen()) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no ${what} within ${ms} ms; the coordinator printed:\n${this.raw}`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  private notify(): void {
    for (const w of this.waiters) w();
  }
}

describe('lits serve through a Redis outage (real redis-server, real coordinator process)', () => {
  let redis: RedisServer;
  let base: string;
  let serve: ServeProcess | undefined;

  beforeAll(async () => {
    redis = await RedisServer.start({ install: false });
    base = await mkdtemp(join(tmpdir(), 'coord-outage-'));
  });
  afterAll(async () => {
    if (serve && serve.child.exitCode === null && serve.child.signalCode === null) {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
    await redis.dispose();
    await rm(base, { recursive: true, force: true });
  });

  it('logs one line when Redis goes and one when it is back, and no error per reconnect attempt', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      REDIS_URL: redis.url,
      LITS_API_TOKEN: TOKEN,
      LOG_LEVEL: 'info',
    };
    delete env.MLFLOW_TRACKING_URI;
    const port = await freePort();
    const args = ['--port', String(port), '--data-root', join(base, 'data'), '--home', join(base, 'home')];
    const s = new ServeProcess(args, env);
    serve = s;
    await s.waitFor('listening line', () => /lits coordinator listening on/.test(s.raw), 60_000);

    await redis.stop();
    await s.waitFor('outage line', () => s.linesMatching(/^Redis unreachable/).length > 0);
    const refusing = await ResettingPort.open(redis.port);
    try {
      // About fifteen failed attempts of each of its connections (API, queue, processor, BullMQ's two): a few
      // seconds of outage, with a pass of the registry pruner in it.
      await refusing.waitForAttempts(80);
    } finally {
      await refusing.close();
    }
    await redis.start();
    await s.waitFor('reachable-again line', () => s.linesMatching(/^Redis reachable again/).length > 0);

    const begins = s.linesMatching(/^Redis unreachable/);
    const ends = s.linesMatching(/^Redis reachable again/);
    expect(begins).toHaveLength(1);
    expect(ends).toHaveLength(1);
    const [begin] = begins;
    expect(begin).toMatchObject({ level: 40, redisRole: expect.any(String) as string });
    expect(begin?.reason).toMatch(/^(connect|read|write) (ECONNREFUSED|ECONNRESET|EPIPE)/);
    expect(begin?.msg).toContain(`(${begin?.redisRole} connection: ${begin?.reason})`);
    const [end] = ends;
    expect(end).toMatchObject({ level: 30, redisRole: begin?.redisRole });
    expect(end?.msg).toBe(`Redis reachable again after ${end?.downS?.toFixed(1)} s`);
    expect(s.raw).not.toMatch(/Unhandled error event/);
    // Nothing else says so once per attempt: no warning or error repeats.
    const warnings = s.lines.filter((l) => l.level >= 40).map((l) => l.msg);
    expect(warnings).toEqual([...new Set(warnings)]);
    // It serves on.
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.ok).toBe(true);

    s.child.kill('SIGTERM');
    await s.exited;
  });
});
