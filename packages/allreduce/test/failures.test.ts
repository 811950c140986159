import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisServer } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import {
  CollectiveAbortedError,
  CollectiveProtocolError,
  CollectiveTimeoutError,
  Communicator,
  abortRun,
  cleanupRun,
} from '../src/index.js';
import { closeGroup, newRunId, openGroup, runKeys } from './group.js';

const redisUrl = serviceUrl('redis');
const TIMEOUT_S = 2;

/**
 * Resolves once `count` connections of the run are blocked in BLPOP on the server, or once `settled` settles
 * (on a machine so busy that the watchdog came first, there is nothing left to wait for).
 */
async function waitForBlockedPops(admin: Redis, runId: string, count: number, settled: Promise<unknown>) {
  let over = false;
  const end = (): void => {
    over = true;
  };
  settled.then(end, end);
  while (!over) {
    const list = (await admin.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string;
    const blocked = list.split('\n').filter((l) => l.includes(runId) && / cmd=blpop /.test(l));
    if (blocked.length >= count) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Settles a collective and measures how long it took. */
async function outcome(p: Promise<unknown> | undefined): Promise<{ error: Error; ms: number }> {
  const started = Date.now();
  try {
    await p;
  } catch (err) {
    return { error: err as Error, ms: Date.now() - started };
  }
  throw new Error('the collective was expected to fail but succeeded');
}

describe.skipIf(!redisUrl)('failure behaviour against a real redis-server', () => {
  const groups: Communicator[][] = [];
  const open = async (...args: Parameters<typeof openGroup>): Promise<Communicator[]> => {
    const g = await openGroup(...args);
    groups.push(g);
    return g;
  };
  afterAll(async () => {
    await Promise.all(groups.map(closeGroup));
  });

  it('a stalled rank: the others time out within timeout + 1 s, naming it, and the group stays failed', async () => {
    const [a, b, c] = await open(redisUrl as string, 3, { timeoutS: TIMEOUT_S });
    const x = new Float32Array(1000).fill(1);
    await Promise.all([a, b, c].map((comm) => comm?.allReduce(x)));
    const results = await Promise.all([outcome(a?.allReduce(x)), outcome(b?.allReduce(x))]);
    for (const { error, ms } of results) {
      expect(ms).toBeLessThanOrEqual(TIMEOUT_S * 1000 + 1000);
      expect(error.message).toMatch(/rank 2 is behind: it finished allReduce\(sum\) #0/);
    }
    const timeouts = results.map((r) => r.error).filter((e) => e instanceof CollectiveTimeoutError);
    expect(timeouts.length).toBeGreaterThan(0);
    const t = timeouts[0] as CollectiveTimeoutError;
    expect(t.suspects).toEqual([2]);
    expect(t.operation).toBe('allReduce(sum)');
    expect(t.sequence).toBe(1);
    expect(t.timeoutMs).toBe(TIMEOUT_S * 1000);
    expect(['rs', 'ag']).toContain(t.phase);
    expect(t.message).toMatch(
      new RegExp(
        `allReduce\\(sum\\) #1 timed out on rank ${t.rank} after 2 s waiting for rank ${t.waitingFor}`,
      ),
    );
    // The stalled rank learns of the abort too, and a failed communicator rejects every later call at once.
    await expect(c?.allReduce(x)).rejects.toThrow(/the group was aborted by rank [01]/);
    expect(c?.signal.aborted).toBe(true);
    await expect(a?.barrier()).rejects.toBe(a?.failure);
  });

  it('ranks calling different collectives, ops or roots at one point are told so', async () => {
    const pairs = await Promise.all(
      [0, 1, 2].map(() => open(redisUrl as string, 2, { timeoutS: TIMEOUT_S })),
    );
    const [[a, b], [c, d], [e, f]] = pairs as [Communicator[], Communicator[], Communicator[]];
    const x = new Float32Array(8);
    const results = await Promise.all([
      Promise.all([outcome(a?.allReduce(x)), outcome(b?.barrier())]),
      Promise.all([outcome(c?.allReduce(x, { op: 'sum' })), outcome(d?.allReduce(x, { op: 'max' }))]),
      Promise.all([outcome(e?.broadcast(Buffer.from('0'), 0)), outcome(f?.broadcast(Buffer.from('1'), 1))]),
    ]);
    const text = results.map((pair) => pair.map((r) => r.error.message).join('\n'));
    const mismatch = 'the ranks called different collectives \\(or gave different arguments\\) at this point';
    expect(text[0]).toMatch(
      new RegExp(`is in (barrier|allReduce\\(sum\\)) #0 while this rank is in .*: ${mismatch}`),
    );
    expect(text[1]).toMatch(
      new RegExp(`is in allReduce\\((max|sum)\\) #0 while this rank is in .*: ${mismatch}`),
    );
    expect(text[2]).toMatch(
      new RegExp(`is in broadcast\\(root [01]\\) #0 while this rank is in .*: ${mismatch}`),
    );
  });

  it('an event loop stalled past the server-side BLPOP backstop still reports the diagnosed timeout', async () => {
    // The backstop is timeoutS + 10 s: a synchronous stall longer than that (a long compute step, a frozen VM) makes
    // Redis answer the pops with nil just as the watchdog comes due. A CI run once saw the bare nil error win.
    const timeoutS = 3;
    const [a, b] = await open(redisUrl as string, 2, { timeoutS });
    const x = new Float32Array(8);
    const pending = [outcome(a?.allReduce(x)), outcome(b?.barrier())];
    const admin = new Redis(redisUrl as string);
    try {
      await waitForBlockedPops(admin, a?.runId as string, 2, Promise.all(pending));
    } finally {
      admin.disconnect();
    }
    const until = performance.now() + (timeoutS + 10) * 1000 + 700;
    while (performance.now() < until); // the stall: nothing else runs in this process meanwhile
    const mismatch = 'the ranks called different collectives \\(or gave different arguments\\) at this point';
    for (const { error } of await Promise.all(pending)) {
      expect(error.message).not.toMatch(/BLPOP/);
      expect(error.message).toMatch(new RegExp(`timed out on rank [01] after ${timeoutS} s .*${mismatch}`));
      expect([CollectiveTimeoutError, CollectiveAbortedError].some((E) => error instanceof E)).toBe(true);
    }
  }, 60_000);

  it('abort(reason) on one rank makes every waiter reject within about a second, naming it', async () => {
    const [a, b, c] = await open(redisUrl as string, 3, { timeoutS: 30 });
    const waiting = [outcome(a?.barrier()), outcome(b?.allReduce(new Float32Array(5)))];
    await new Promise((r) => setTimeout(r, 200));
    await c?.abort('worker ran out of memory');
    for (const { error, ms } of await Promise.all(waiting)) {
      expect(error).toBeInstanceOf(CollectiveAbortedError);
      expect((error as CollectiveAbortedError).abortedBy).toBe(2);
      expect((error as CollectiveAbortedError).reason).toBe('worker ran out of memory');
      expect(error.message).toMatch(/aborted by rank 2: worker ran out of memory/);
      expect(ms).toBeLessThan(200 + 1000);
    }
    expect(a?.signal.reason).toBe(a?.failure);
    await expect(c?.barrier()).rejects.toThrow(/rank 2 aborted the group/);
  });

  it('abortRun from the coordinator reaches every rank; the first reason wins', async () => {
    const runId = newRunId('coord');
    const [a, b] = await open(redisUrl as string, 3, { runId, generation: 4, timeoutS: 30 });
    const waiting = [outcome(a?.barrier()), outcome(b?.barrier())];
    expect(
      await abortRun({ redis: redisUrl as string, runId, generation: 4, reason: 'cancelled by user' }),
    ).toBe(true);
    expect(await abortRun({ redis: redisUrl as string, runId, generation: 4, reason: 'second' })).toBe(false);
    for (const { error, ms } of await Promise.all(waiting)) {
      expect(error.message).toMatch(/aborted by coordinator: cancelled by user/);
      expect(ms).toBeLessThan(1500);
    }
    expect(await cleanupRun({ redis: redisUrl as string, runId })).toBeGreaterThan(0);
    expect((await runKeys(redisUrl as string, runId)).size).toBe(0);
  });

  it('a new generation ignores the messages and the abort of the previous one', async () => {
    const runId = newRunId('gen');
    const [old0] = await open(redisUrl as string, 2, { runId, generation: 0, timeoutS: 1 });
    const stale = new Float32Array(4096).fill(1000);
    await outcome(old0?.allReduce(stale)); // rank 1 never came: rank 0's pushes stay behind, with a TTL
    const leftovers = await runKeys(redisUrl as string, runId);
    expect([...leftovers.keys()].some((k) => k.includes(':coll:g0:m:0:'))).toBe(true);
    expect([...leftovers.keys()].some((k) => k.endsWith(':coll:g0:abort'))).toBe(true);
    for (const ttl of leftovers.values()) expect(ttl).toBeGreaterThan(0);

    const fresh = await open(redisUrl as string, 2, { runId, generation: 1, timeoutS: 10 });
    const x = new Float32Array(4096).fill(1);
    const sums = await Promise.all(fresh.map((c) => c.allReduce(x)));
    for (const s of sums) expect(Array.from(s).every((v) => v === 2)).toBe(true);
    await closeGroup(fresh);

    expect(await cleanupRun({ redis: redisUrl as string, runId, generation: 0 })).toBeGreaterThan(0);
    const after = [...(await runKeys(redisUrl as string, runId)).keys()];
    expect(after.every((k) => k.includes(':coll:g1:'))).toBe(true);
    await cleanupRun({ redis: redisUrl as string, runId });
    expect((await runKeys(redisUrl as string, runId)).size).toBe(0);
  });

  it('a malformed message (ranks pass different lengths) stops the whole group at once, naming the sender', async () => {
    const [a, b] = await open(redisUrl as string, 2, { timeoutS: 30 });
    const results = await Promise.all([
      outcome(a?.allReduce(new Float32Array(10))),
      outcome(b?.allReduce(new Float32Array(11))),
    ]);
    const protocol = results.map((r) => r.error).find((e) => e instanceof CollectiveProtocolError);
    expect(protocol?.message).toMatch(
      /rank [01] sent \d+ bytes for reduce-scatter step 0 chunk 0, but rank [01] expected \d+/,
    );
    for (const { error, ms } of results) {
      expect(error.message).toMatch(/do all ranks pass the same length/);
      expect(ms).toBeLessThan(5000);
    }
  });

  it('Redis dying mid-collective: the waiter rejects within timeout + 1 s saying Redis is unreachable', async () => {
    const server = await RedisServer.start();
    try {
      const [a, b] = await open(server.url, 2, { timeoutS: TIMEOUT_S });
      await Promise.all([a, b].map((c) => c?.barrier()));
      const pending = outcome(a?.allReduce(new Float32Array(100))); // rank 1 never joins
      await new Promise((r) => setTimeout(r, 100));
      await server.stop();
      const { error, ms } = await pending;
      expect(error).toBeInstanceOf(CollectiveTimeoutError);
      expect(error.message).toMatch(/Redis redis:\/\/127\.0\.0\.1:\d+ is unreachable/);
      expect(ms).toBeLessThanOrEqual(TIMEOUT_S * 1000 + 1000);
      await expect(
        Communicator.connect({
          redis: server.url,
          runId: 'x',
          generation: 0,
          rank: 0,
          worldSize: 1,
          timeoutS: 1,
        }),
      ).rejects.toThrow(/cannot connect to Redis redis:\/\/127\.0\.0\.1:\d+ within 1 s/);
    } finally {
      await server.dispose();
    }
  });

  it('invalid options are rejected naming the field', async () => {
    const base = { redis: redisUrl as string, runId: 'r', generation: 0, rank: 0, worldSize: 2 };
    await expect(Communicator.connect({ ...base, rank: 2 })).rejects.toThrow(
      /CommunicatorOptions.rank must be an integer in \[0, 1\] \(got 2\)/,
    );
    await expect(Communicator.connect({ ...base, runId: 'a b' })).rejects.toThrow(
      /CommunicatorOptions.runId must be/,
    );
    await expect(Communicator.connect({ ...base, chunkBytes: 1001 })).rejects.toThrow(
      /chunkBytes must be a multiple of 8/,
    );
    await expect(Communicator.connect({ ...base, redis: 'localhost:6379' })).rejects.toThrow(
      /redis\[0\] must be a redis:\/\//,
    );
    await expect(Communicator.connect({ ...base, timeoutS: 0 })).rejects.toThrow(
      /timeoutS must be a positive number/,
    );
    await expect(Communicator.connect({ ...base, redis: [] })).rejects.toThrow(/at least one Redis instance/);
  });
});
