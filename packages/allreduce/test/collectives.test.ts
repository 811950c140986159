import { afterAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import type { Communicator } from '../src/index.js';
import { closeGroup, gradientLike, newRunId, openGroup, rngFor, runKeys, sameBits } from './group.js';

const redisUrl = serviceUrl('redis');
const CHUNK_BYTES = 4096;

function bytes(tag: string, rank: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  const rng = rngFor('bytes', tag, rank, size);
  for (let i = 0; i < size; i++) b[i] = rng.int(256);
  return b;
}

describe.skipIf(!redisUrl)('broadcast, all-gather and barrier against a real redis-server', () => {
  const groups: Communicator[][] = [];
  afterAll(async () => {
    await Promise.all(groups.map(closeGroup));
  });

  for (const n of [1, 2, 3, 4]) {
    it(`N=${n}: broadcast from every root, all-gather of different sizes, barrier`, async () => {
      const runId = newRunId('coll');
      const group = await openGroup(redisUrl as string, n, { runId, chunkBytes: CHUNK_BYTES, timeoutS: 20 });
      groups.push(group);
      for (const size of [0, 5, CHUNK_BYTES - 16, CHUNK_BYTES - 15, 3 * CHUNK_BYTES + 7]) {
        for (let root = 0; root < n; root++) {
          const data = bytes('bcast', root, size);
          const got = await Promise.all(
            group.map((c, r) => c.broadcast(r === root ? data : undefined, root)),
          );
          for (const g of got) expect(g.equals(data)).toBe(true);
        }
      }
      const sizes = [0, 1, CHUNK_BYTES, 2 * CHUNK_BYTES + 3, 100];
      const mine = group.map((_, r) => bytes('gather', r, sizes[r % sizes.length] as number));
      const gathered = await Promise.all(group.map((c, r) => c.allGather(mine[r] as Buffer)));
      for (const g of gathered) {
        expect(g).toHaveLength(n);
        g.forEach((b, r) => expect(b.equals(mine[r] as Buffer)).toBe(true));
      }

      // The last rank enters the barrier later; nobody may leave before it does.
      let lastEntered = false;
      const early = group.slice(0, -1).map((c) => c.barrier().then(() => lastEntered));
      await new Promise((r) => setTimeout(r, 300));
      lastEntered = true;
      const [last] = group.slice(-1);
      await last?.barrier();
      expect(await Promise.all(early)).toEqual(early.map(() => true));

      // Successful collectives consume every message; only the progress hash (with a TTL) remains until cleanup.
      const left = await runKeys(redisUrl as string, runId);
      for (const [key, ttl] of left) {
        expect(key).toMatch(/:progress$/);
        expect(ttl).toBeGreaterThan(0);
      }
      // Once the other ranks have closed, nothing writes any more, so one rank's cleanup leaves nothing.
      await Promise.all(group.slice(1).map((c) => c.close()));
      await group[0]?.cleanup();
      expect((await runKeys(redisUrl as string, runId)).size).toBe(0);
    });
  }

  it('counts bytes and time per operation, matching the ring volume 2(N-1)/N of the vector', async () => {
    const n = 3;
    const length = 100_003;
    const group = await openGroup(redisUrl as string, n, { chunkBytes: 65536 });
    groups.push(group);
    const xs = group.map((_, r) => gradientLike(rngFor('stats', r), length));
    await Promise.all(group.map((c, r) => c.allReduce(xs[r] as Float32Array)));
    await Promise.all(group.map((c) => c.barrier()));
    const seg = (s: number): number => Math.floor((length * (s + 1)) / n) - Math.floor((length * s) / n);
    let total = 0;
    group.forEach((c, r) => {
      const s = c.stats();
      const ar = s.operations.allReduce;
      // rank r sends segments r, r-1, .. (reduce-scatter) and r+1, r, .. (all-gather), N-1 of each
      let expected = 0;
      for (let t = 0; t < n - 1; t++)
        expected += seg((((r - t) % n) + n) % n) + seg((((r + 1 - t) % n) + n) % n);
      expect(ar?.bytesSent).toBe(expected * 4);
      expect(ar?.calls).toBe(1);
      expect(ar?.lastMs).toBeGreaterThan(0);
      expect(s.operations.barrier?.calls).toBe(1);
      expect(s.bytesSent).toBe((ar?.bytesSent ?? 0) + (s.operations.barrier?.bytesSent ?? 0));
      total += ar?.bytesSent ?? 0;
    });
    const received = group.reduce((a, c) => a + (c.stats().operations.allReduce?.bytesReceived ?? 0), 0);
    expect(received).toBe(total);
    expect(total).toBe(2 * (n - 1) * length * 4);
    group[0]?.resetStats();
    expect(group[0]?.stats().bytesSent).toBe(0);
  });

  it('rejects bad arguments with a clear message', async () => {
    const [c] = await openGroup(redisUrl as string, 1);
    const comm = c as Communicator;
    groups.push([comm]);
    expect(() => comm.allReduce([1, 2] as unknown as Float32Array)).toThrow(
      /allReduce input must be a Float32Array/,
    );
    expect(() => comm.allReduce(new Float32Array(1), { op: 'min' as 'max' })).toThrow(/unknown op min/);
    expect(() => comm.broadcast(undefined, 0)).toThrow(/root rank 0/);
    expect(() => comm.broadcast(Buffer.alloc(1), 3)).toThrow(/root must be a rank in \[0, 1\)/);
    expect(() => comm.allGather('x' as unknown as Buffer)).toThrow(/Uint8Array or Buffer/);
    expect((await comm.allReduce(new Float32Array([1.5]), { op: 'mean' }))[0]).toBe(1.5);
    const x = new Float32Array(4);
    expect(() => comm.allReduce(x, { out: new Float32Array(3) })).toThrow(
      /options.out has 3 values, expected 4/,
    );
    expect(() => comm.allReduce(x, { out: x.subarray(0) })).toThrow(/options.out overlaps an input/);
    expect(() => comm.allReduceExact([x], { totalContributions: 1, out: x })).toThrow(/overlaps an input/);
  });

  it('writes into options.out when given, with the same bits as a new array', async () => {
    const group = await openGroup(redisUrl as string, 3, { chunkBytes: 4096 });
    groups.push(group);
    const xs = group.map((_, r) => gradientLike(rngFor('out', r), 10_001));
    const outs = group.map(() => new Float32Array(10_001));
    const fresh = await Promise.all(group.map((c, r) => c.allReduce(xs[r] as Float32Array, { op: 'mean' })));
    const into = await Promise.all(
      group.map((c, r) => c.allReduce(xs[r] as Float32Array, { op: 'mean', out: outs[r] })),
    );
    group.forEach((_, r) => {
      expect(into[r]).toBe(outs[r]);
      expect(sameBits(into[r] as Float32Array, fresh[r] as Float32Array)).toBe(true);
    });
    const exactFresh = await Promise.all(
      group.map((c, r) => c.allReduce(xs[r] as Float32Array, { mode: 'exact' })),
    );
    const exactInto = await Promise.all(
      group.map((c, r) => c.allReduce(xs[r] as Float32Array, { mode: 'exact', out: outs[r] })),
    );
    group.forEach((_, r) => {
      expect(exactInto[r]).toBe(outs[r]);
      expect(sameBits(exactInto[r] as Float32Array, exactFresh[0] as Float32Array)).toBe(true);
    });
  });
});
