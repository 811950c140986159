// Registry hygiene: a worker killed without a chance to deregister (SIGKILL) disappears from the
// registry once it has been without heartbeat for the grace period, while a live worker, and a dead
// one that still holds a run's lease, stay. Real Redis, real WorkerAgents; the killed ones run in a
// child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectSystemInfo, WorkerAgent } from '@lits-ddp/trainer';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { workerKeys } from '@lits-ddp/protocol';
import { WorkerPool } from '../src/orchestration/worker-pool.js';

process.env.LITS_KEY_PREFIX = `prune-${randomBytes(3).toString('hex')}`;

const redisUrl = serviceUrl('redis');
const GRACE_MS = 1_000;
const HEARTBEAT_S = 0.2;

/** Polls `probe` until it returns a value, or fails after `timeoutMs`. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts WorkerAgents with `ids` in a child process, registered and heartbeating. */
async function startWorkerProcess(url: string, ids: string[]): Promise<ChildProcess> {
  const trainer = new URL('../../trainer/dist/index.js', import.meta.url).href;
  const script = `
    import { collectSystemInfo, WorkerAgent } from ${JSON.stringify(trainer)};
    for (const workerId of ${JSON.stringify(ids)}) {
      const agent = new WorkerAgent({ redisUrl: ${JSON.stringify(url)}, workerId, engine: 'cpu', device: 'cpu',
        system: collectSystemInfo('4.22.0'), heartbeatIntervalS: ${HEARTBEAT_S} });
      await agent.start();
    }
    setInterval(() => undefined, 1000);
  `;
  // A file, not `--input-type=module -e`: the agent's heartbeat thread inherits the process's flags.
  const dir = await mkdtemp(join(tmpdir(), 'lits-prune-'));
  const file = join(dir, 'workers.mjs');
  await writeFile(file, script);
  const child = spawn(process.execPath, [file], {
    env: process.env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.once('exit', () => void rm(dir, { recursive: true, force: true }));
  return child;
}

describe.skipIf(!redisUrl)('pruning dead workers from the registry (real Redis)', () => {
  let redis: Redis;
  let live: WorkerAgent;
  const children: ChildProcess[] = [];

  const registered = async (id: string): Promise<boolean> =>
    (await redis.sismember(workerKeys.registry(), id)) === 1 &&
    (await redis.exists(workerKeys.info(id))) === 1;
  const beating = async (id: string): Promise<boolean> =>
    (await redis.exists(workerKeys.heartbeat(id))) === 1;

  /** Starts the ids in a child process, waits for their heartbeats, then SIGKILLs it. */
  async function killedWorkers(ids: string[]): Promise<void> {
    const child = await startWorkerProcess(redisUrl as string, ids);
    children.push(child);
    for (const id of ids)
      await until(`${id} heartbeating`, async () => ((await beating(id)) ? true : undefined));
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  beforeAll(async () => {
    redis = new Redis(redisUrl as string);
    live = new WorkerAgent({
      redisUrl: redisUrl as string,
      workerId: 'live',
      engine: 'cpu',
      device: 'cpu',
      system: collectSystemInfo('4.22.0'),
      heartbeatIntervalS: HEARTBEAT_S,
    });
    await live.start();
    await until('live heartbeating', async () => ((await beating('live')) ? true : undefined));
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await live?.stop();
    await redis?.quit();
  });

  it('a killed worker leaves the registry after the grace period; a live one stays', async () => {
    const pool = new WorkerPool(redis, { deadWorkerGraceMs: GRACE_MS });
    await killedWorkers(['killed']);
    // Killed: the entry outlives the process (nothing deregistered it), and it lists as dead.
    expect(await registered('killed')).toBe(true);
    const diedAt = Date.now();
    const pruner = pool.startPruner({ intervalMs: 100 });
    try {
      await until('the killed worker pruned', async () => ((await registered('killed')) ? undefined : true));
      // Its heartbeat had to lapse first, then the grace period run, all while the live one was watched.
      expect(Date.now() - diedAt).toBeGreaterThanOrEqual(GRACE_MS);
      expect(await redis.exists(workerKeys.inbox('killed'))).toBe(0);
      expect(await registered('live')).toBe(true);
      expect((await pool.list()).map((w) => w.info.id)).toEqual(['live']);
    } finally {
      await pruner.stop();
    }
  });

  it('a dead worker holding a running run’s lease stays until the lease is gone', async () => {
    const pool = new WorkerPool(redis, { deadWorkerGraceMs: GRACE_MS });
    await killedWorkers(['leased', 'unleased']);
    // The run's supervisor holds the lease (SET NX PX), as WorkerPool.lease writes it.
    await redis.set(workerKeys.lease('leased'), 'run-1', 'PX', 60_000);
    // Both died together: once the unleased one is pruned, the leased one was past its grace too.
    await until('the unleased dead worker pruned', async () => {
      await pool.prune();
      return (await registered('unleased')) ? undefined : true;
    });
    expect(await registered('leased')).toBe(true);
    expect(await registered('live')).toBe(true);
    await pool.release('run-1', ['leased']);
    const gone = await until('the formerly leased worker pruned', async () => {
      const pruned = await pool.prune();
      return pruned.includes('leased') ? pruned : undefined;
    });
    expect(gone).toEqual(['leased']);
    expect(await registered('leased')).toBe(false);
    expect(await registered('live')).toBe(true);
  });

  it('an entry re-registered under the same id after it was seen dead is kept', async () => {
    const pool = new WorkerPool(redis, { deadWorkerGraceMs: 0 });
    const id = 'restarted';
    // A registration without heartbeat: the pool starts watching it.
    await redis.hset(workerKeys.info(id), 'startedAt', '1');
    await redis.sadd(workerKeys.registry(), id);
    expect(await pool.prune()).not.toContain(id);
    // The same id registers again (a restarted pod) before its first beat: a fresh entry, a fresh watch.
    await redis.hset(workerKeys.info(id), 'startedAt', String(Date.now()));
    expect(await pool.prune()).not.toContain(id);
    expect(await registered(id)).toBe(true);
    expect(await pool.prune()).toContain(id);
    expect(await registered(id)).toBe(false);
  });
});
