import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer, ensureRedisServer, freePort, pingRedis } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { Communicator, abortRun, cleanupRun } from '../src/index.js';
import { closeGroup, newRunId, openGroup, runKeys } from './group.js';

// Dedicated servers only: CLIENT PAUSE would stall every other test file on the shared one.
const redisUrl = serviceUrl('redis');

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A redis-server in cluster mode (no slots assigned: enough to be recognised as a cluster node). */
async function startClusterNode(): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'allreduce-cluster-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    ensureRedisServer().path,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, 'nodes.conf'),
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await pingRedis(port))) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`cluster-mode redis-server on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!redisUrl)('admin calls and Redis deployments, against dedicated redis-servers', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server.dispose();
  });

  it('cleanupRun, abortRun and cleanup() fail within their time limit, naming the command and Redis, when Redis stops answering', async () => {
    const url = server.url;
    const runId = newRunId('admin');
    const group = await openGroup(url, 2, { runId, timeoutS: 1 });
    const admin = new Redis(url);
    try {
      const x = new Float32Array(100).fill(1);
      await Promise.all(group.map((c) => c.allReduce(x))); // leaves the progress hash behind
      // Writes wait until unpaused; reads (INFO, SCAN) still answer, so every call connects and then hangs.
      await admin.call('CLIENT', 'PAUSE', '60000', 'WRITE');
      const where = escape(url);

      let started = Date.now();
      const cleaned = await cleanupRun({ redis: url, runId, commandTimeoutS: 0.5 }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(3000);
      expect((cleaned as Error).message).toMatch(
        new RegExp(`^cleanupRun: Redis ${where} did not answer UNLINK \\S+:progress within 0.5 s$`),
      );

      started = Date.now();
      const aborted = await abortRun({
        redis: url,
        runId,
        generation: 0,
        reason: 'test',
        commandTimeoutS: 0.5,
      }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(3000);
      expect((aborted as Error).message).toMatch(
        new RegExp(`^abortRun: Redis ${where} did not answer SET \\S+:abort within 0.5 s$`),
      );

      started = Date.now();
      const own = await (group[0] as Communicator).cleanup().catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(3500);
      expect((own as Error).message).toMatch(
        new RegExp(
          `^cleanup\\(\\) on rank 0: Redis ${where} did not answer UNLINK \\S+:progress within 1 s$`,
        ),
      );
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
      admin.disconnect();
      await closeGroup(group);
    }
    await cleanupRun({ redis: url, runId });
    expect((await runKeys(url, runId)).size).toBe(0);
    await expect(cleanupRun({ redis: url, runId, commandTimeoutS: 0 })).rejects.toThrow(
      /RunTarget.commandTimeoutS must be a positive number of seconds \(got 0\)/,
    );
  });

  it('a Redis Cluster node is refused at once with a clear error (Cluster is not supported)', async () => {
    const node = await startClusterNode();
    try {
      const runId = newRunId('cluster');
      const cluster = escape(node.url);
      const connect = (redis: string | string[]) =>
        Communicator.connect({ redis, runId, generation: 0, rank: 0, worldSize: 1, timeoutS: 5 }).catch(
          (e: unknown) => e,
        );
      const alone = await connect(node.url);
      expect((alone as Error).message).toMatch(
        new RegExp(`^CommunicatorOptions.redis\\[0\\]: Redis ${cluster} runs in cluster mode`),
      );
      expect((alone as Error).message).toMatch(/Redis Cluster is not supported/);
      const second = await connect([server.url, node.url]);
      expect((second as Error).message).toMatch(
        new RegExp(`^CommunicatorOptions.redis\\[1\\]: Redis ${cluster}`),
      );
      await expect(cleanupRun({ redis: node.url, runId })).rejects.toThrow(
        new RegExp(`^RunTarget.redis\\[0\\]: Redis ${cluster} runs in cluster mode`),
      );
      await expect(
        abortRun({ redis: [server.url, node.url], runId, generation: 0, reason: 'x' }),
      ).rejects.toThrow(/RunTarget.redis\[1\]: .* runs in cluster mode/);
      // Nothing was written to the plain instance by the refused calls.
      expect((await runKeys(server.url, runId)).size).toBe(0);
    } finally {
      await node.stop();
    }
  });
});
