import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { abortRun, cleanupRun } from '../src/index.js';
import { closeGroup, gradientLike, newRunId, openGroup, rngFor, runKeys, sameBits } from './group.js';

// Only needs redis-server itself; the shared service check keeps the skip rule of the other files.
const redisUrl = serviceUrl('redis');

async function netInputBytes(url: string): Promise<number> {
  const r = new Redis(url);
  try {
    const info = await r.info('stats');
    return Number(/total_net_input_bytes:(\d+)/.exec(info)?.[1]);
  } finally {
    r.disconnect();
  }
}

describe.skipIf(!redisUrl)('several independent Redis instances', () => {
  const servers: RedisServer[] = [];
  beforeAll(async () => {
    servers.push(await RedisServer.start(), await RedisServer.start());
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.dispose()));
  });

  it('spreads ring edges over two redis-servers with the same bits as one server', async () => {
    const urls = servers.map((s) => s.url);
    const runId = newRunId('multi');
    const n = 4;
    const length = 1_000_003;
    const xs = Array.from({ length: n }, (_, r) => gradientLike(rngFor('multi', r), length));
    const spread = await openGroup(urls, n, { runId, chunkBytes: 131072 });
    const single = await openGroup(urls[0] as string, n, { chunkBytes: 131072 });
    try {
      const before = await Promise.all(urls.map(netInputBytes));
      const ring = await Promise.all(spread.map((c, r) => c.allReduce(xs[r] as Float32Array)));
      const after = await Promise.all(urls.map(netInputBytes));
      // Ranks 0 and 2 push to instance 0, ranks 1 and 3 to instance 1: each carries about half of 2(N-1) vectors.
      const half = ((2 * (n - 1) * length * 4) / 2) * 0.9;
      for (let i = 0; i < 2; i++) expect((after[i] as number) - (before[i] as number)).toBeGreaterThan(half);

      const reference = await Promise.all(single.map((c, r) => c.allReduce(xs[r] as Float32Array)));
      for (const res of [...ring, ...reference]) expect(sameBits(res, ring[0] as Float32Array)).toBe(true);

      const exact = await Promise.all(
        spread.map((c, r) => c.allReduceExact([xs[r] as Float32Array], { totalContributions: n })),
      );
      const exactOne = await Promise.all(
        single.map((c, r) => c.allReduceExact([xs[r] as Float32Array], { totalContributions: n })),
      );
      for (const res of [...exact, ...exactOne]) expect(sameBits(res, exact[0] as Float32Array)).toBe(true);

      const payloads = spread.map((_, r) => Buffer.alloc(1000 * (r + 1), r));
      const gathered = await Promise.all(spread.map((c, r) => c.allGather(payloads[r] as Buffer)));
      for (const g of gathered) g.forEach((b, r) => expect(b.equals(payloads[r] as Buffer)).toBe(true));
      const sent = await Promise.all(
        spread.map((c, r) => c.broadcast(r === 3 ? Buffer.from('from rank 3') : undefined, 3)),
      );
      for (const s of sent) expect(s.toString()).toBe('from rank 3');
      await Promise.all(spread.map((c) => c.barrier()));
    } finally {
      await closeGroup(spread);
      await closeGroup(single);
    }
    expect(await abortRun({ redis: urls, runId, generation: 0, reason: 'end of test' })).toBe(true);
    await cleanupRun({ redis: urls, runId });
    for (const url of urls) expect((await runKeys(url, runId)).size).toBe(0);
  });
});
