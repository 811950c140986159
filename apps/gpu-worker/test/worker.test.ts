import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { resolveSpec, runEventOfFields, runKeys, workerKeys, type RunPlan } from '@lits-ddp/protocol';
// The heartbeat runs in a worker thread loaded from a file next to the module: test the built code.
import { RUN_FAILED_EXIT_CODE, WorkerAgent, collectSystemInfo } from '@lits-ddp/trainer';

const redisUrl = serviceUrl('redis');
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe.skipIf(!redisUrl)('worker registration, heartbeats and lifetime (real Redis)', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl as string);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('registers itself and keeps heartbeating while the main thread is blocked by a long kernel', async () => {
    const id = `test-${randomBytes(4).toString('hex')}`;
    const agent = new WorkerAgent({
      redisUrl: redisUrl as string,
      workerId: id,
      engine: 'cpu',
      device: 'cpu (pure JS)',
      system: collectSystemInfo('4.22.0'),
      heartbeatIntervalS: 0.5,
    });
    await agent.start();
    try {
      expect(await redis.sismember(workerKeys.registry(), id)).toBe(1);
      const info = await redis.hgetall(workerKeys.info(id));
      expect(JSON.parse(info.state as string)).toBe('idle');
      expect(JSON.parse(info.system as string).cpuCount).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 700));
      const before = Number(await redis.get(workerKeys.heartbeat(id)));
      // A synchronous 4 s block: longer than the heartbeat's 1.5 s TTL.
      const until = Date.now() + 4000;
      while (Date.now() < until) {
        /* busy, like a tfjs kernel */
      }
      const after = Number(await redis.get(workerKeys.heartbeat(id)));
      expect(after).toBeGreaterThan(before + 2000);
      expect(await redis.pttl(workerKeys.heartbeat(id))).toBeGreaterThan(0);
    } finally {
      await agent.stop();
    }
    expect(await redis.sismember(workerKeys.registry(), id)).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(await redis.exists(workerKeys.heartbeat(id))).toBe(0);
  });

  it.each([
    ['finished', 0],
    ['cancelled', 0],
    ['failed', RUN_FAILED_EXIT_CODE],
  ] as const)('--exit-when-run-ends exits when the run is %s (status %i)', async (status, code) => {
    const runId = `run-${randomBytes(4).toString('hex')}`;
    const id = `${runId}-w0`;
    const child = spawn(
      process.execPath,
      [main, '--id', id, '--engine', 'cpu', '--exit-when-run-ends', runId],
      {
        env: { ...process.env, REDIS_URL: redisUrl },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    for (let i = 0; i < 100 && (await redis.sismember(workerKeys.registry(), id)) === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await redis.sismember(workerKeys.registry(), id)).toBe(1);
    await redis.set(runKeys.status(runId), 'running');
    await new Promise((r) => setTimeout(r, 1500));
    expect(child.exitCode).toBeNull();
    await redis.set(runKeys.status(runId), status);
    expect(await exited).toBe(code);
    expect(stderr).toMatch(new RegExp(`run ${runId} ${status}: exiting`));
    expect(await redis.sismember(workerKeys.registry(), id)).toBe(0);
    await redis.del(runKeys.status(runId));
  });

  it('registers its engine and thread pools, and refuses a plan for another engine before training', async () => {
    const runId = `run-${randomBytes(4).toString('hex')}`;
    const id = `${runId}-w0`;
    const child = spawn(process.execPath, [main, '--id', id, '--engine', 'cpu', '--threads', '3', '--once'], {
      env: { ...process.env, REDIS_URL: redisUrl },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    for (let i = 0; i < 100 && (await redis.sismember(workerKeys.registry(), id)) === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const info = await redis.hgetall(workerKeys.info(id));
    expect(JSON.parse(info.engine as string)).toBe('cpu');
    // Pure JS has no thread pools to pin: --threads applies to native engines only.
    expect(JSON.parse(info.engineThreads as string)).toBeNull();
    const plan = planFor(runId, [id]);
    await redis.set(runKeys.plan(runId), JSON.stringify(plan));
    await redis.rpush(
      workerKeys.inbox(id),
      JSON.stringify({ type: 'assign', runId, generation: 1, rank: 0 }),
    );
    const stream = await waitForEvent(runId, 'failed');
    expect(stream).toMatchObject({ type: 'failed', rank: 0, generation: 1 });
    expect(stream.type === 'failed' && stream.error).toMatch(
      /^the run's engine is node with 1 intra-op thread, 1 inter-op thread; this worker runs engine cpu \(@tensorflow\/tfjs 4\.22\.0, backend cpu\)$/,
    );
    expect(await exited).toBe(0);
    await redis.del(runKeys.plan(runId), runKeys.events(runId));
  });

  it('fails the generation with a plan that does not decode, naming the plan key, and serves on', async () => {
    const runId = `run-${randomBytes(4).toString('hex')}`;
    const id = `${runId}-w0`;
    const child = spawn(process.execPath, [main, '--id', id, '--engine', 'cpu', '--once'], {
      env: { ...process.env, REDIS_URL: redisUrl },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    const { seeds: _seeds, ...withoutSeeds } = planFor(runId, [id]);
    await redis.set(runKeys.plan(runId), JSON.stringify(withoutSeeds));
    await redis.rpush(
      workerKeys.inbox(id),
      JSON.stringify({ type: 'assign', runId, generation: 1, rank: 0 }),
    );
    const failed = await waitForEvent(runId, 'failed');
    expect(failed).toMatchObject({ type: 'failed', rank: 0, generation: 1 });
    expect(failed.type === 'failed' && failed.error).toBe(
      `run plan ${runKeys.plan(runId)}: the value must have required properties seeds`,
    );
    // Not a training run: the worker stays for the next command, and a shutdown stops it.
    await redis.rpush(workerKeys.inbox(id), JSON.stringify({ type: 'shutdown', reason: 'test over' }));
    expect(await exited).toBe(0);
    expect(stderr).toContain(
      `run plan ${runKeys.plan(runId)}: the value must have required properties seeds`,
    );
    await redis.del(runKeys.plan(runId), runKeys.events(runId));
  });

  /** A whole plan for one generation on the native engine with one thread (what a cpu worker refuses). */
  function planFor(runId: string, ranks: string[]): RunPlan {
    const resolved = resolveSpec({ 'dataset-path': '/data', determinism: 'deterministic' });
    if (!resolved.ok) throw new Error(JSON.stringify(resolved.errors));
    const runDir = `/tmp/${runId}`;
    return {
      runId,
      generation: 1,
      spec: resolved.spec,
      seeds: { data: 0, model: 0 },
      ranks,
      engine: { name: 'node', threads: { intraOp: 1, interOp: 1 } },
      trainCases: [],
      testCases: [],
      paths: { runDir, cacheDir: `${runDir}/cache`, checkpointDir: `${runDir}/checkpoints` },
    };
  }

  async function waitForEvent(runId: string, type: string) {
    for (;;) {
      const entries = await redis.xrange(runKeys.events(runId), '-', '+');
      const event = entries.map(([, fields]) => runEventOfFields(fields)).find((e) => e?.type === type);
      if (event) return event;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});
