import { afterAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import type { Communicator } from '../src/index.js';
import { closeGroup, gradientLike, openGroup, rngFor, sameBits } from './group.js';

const redisUrl = serviceUrl('redis');
const CHUNK_BYTES = 64 * 1024;
const CHUNK = CHUNK_BYTES / 4;
const TEN_MB = (10 * 1024 * 1024) / 4;
const U = 2 ** -24;

function inputs(worldSize: number, length: number, tag: string): Float32Array[] {
  return Array.from({ length: worldSize }, (_, r) =>
    gradientLike(rngFor('ring', tag, worldSize, length, r), length),
  );
}

/** Checks one rank's result against a float64 reference within the fp32 rounding of a sequential sum. */
function checkAgainstReference(op: 'sum' | 'mean' | 'max', xs: Float32Array[], result: Float32Array): void {
  const n = xs.length;
  let worst = 0;
  for (let i = 0; i < result.length; i++) {
    let sum = 0;
    let abs = 0;
    let max = -Infinity;
    for (const x of xs) {
      const v = x[i] as number;
      sum += v;
      abs += Math.abs(v);
      max = Math.max(max, v);
    }
    const got = result[i] as number;
    if (op === 'max') {
      if (got !== max) throw new Error(`max differs at ${i}: ${got} vs ${max}`);
      continue;
    }
    const ref = op === 'sum' ? sum : sum / n;
    const bound =
      (op === 'sum' ? (n - 1) * U * abs : ((n - 1) * U * abs) / n + U * Math.abs(ref)) + 2 ** -148;
    const err = Math.abs(got - ref);
    if (err > bound) throw new Error(`${op} at ${i}: |${got} - ${ref}| = ${err} > ${bound}`);
    worst = Math.max(worst, err / bound);
  }
  expect(worst).toBeLessThanOrEqual(1);
}

describe.skipIf(!redisUrl)('ring all-reduce against a real redis-server', () => {
  const groups: Communicator[][] = [];
  afterAll(async () => {
    await Promise.all(groups.map(closeGroup));
  });

  for (const worldSize of [1, 2, 3, 4, 5]) {
    it(`sum, mean and max for N=${worldSize} and sizes 1, 7, chunk-1, chunk+1, N*chunk-1, N*chunk+1, 10 MB`, async () => {
      const group = await openGroup(redisUrl as string, worldSize, { chunkBytes: CHUNK_BYTES, timeoutS: 20 });
      groups.push(group);
      // N*chunk+-1 puts a segment just over / under one chunk, so segments split into uneven slices.
      const lengths = [1, 7, CHUNK - 1, CHUNK + 1, worldSize * CHUNK - 1, worldSize * CHUNK + 1, TEN_MB];
      for (const length of new Set(lengths)) {
        const xs = inputs(worldSize, length, 'ops');
        for (const op of ['sum', 'mean', 'max'] as const) {
          const results = await Promise.all(group.map((c, r) => c.allReduce(xs[r] as Float32Array, { op })));
          for (const res of results) expect(sameBits(res, results[0] as Float32Array)).toBe(true);
          checkAgainstReference(op, xs, results[0] as Float32Array);
        }
      }
      for (const c of group) expect(c.failure).toBeUndefined();
    });
  }
});
