import { afterAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { BucketPlan, allReduceExactTensors, allReduceTensors, type Communicator } from '../src/index.js';
import { closeGroup, gradientLike, openGroup, rngFor, sameBits } from './group.js';

const redisUrl = serviceUrl('redis');
const SIZES = [3, 0, 40, 7, 1000, 1, 250]; // like a model: a few big kernels, small biases, an empty tensor

function tensorsOf(tag: string, k: number): Float32Array[] {
  return SIZES.map((n, i) => gradientLike(rngFor('bucket', tag, k, i), n));
}

describe('BucketPlan', () => {
  it('lays tensors end to end in fixed buckets; gather and scatter invert each other', () => {
    const plan = new BucketPlan(SIZES, { bucketBytes: 4 * 64 });
    expect(plan.totalElements).toBe(1301);
    expect(plan.buckets).toHaveLength(21);
    expect(plan.buckets[0]).toEqual({ start: 0, end: 64 });
    expect(plan.buckets[20]).toEqual({ start: 1280, end: 1301 });
    const tensors = tensorsOf('plan', 0);
    const out = SIZES.map((n) => new Float32Array(n));
    plan.buckets.forEach((_, b) => plan.scatter(plan.gather(tensors, b), b, out));
    out.forEach((t, i) => expect(sameBits(t, tensors[i] as Float32Array)).toBe(true));
    expect(new BucketPlan(SIZES).buckets).toEqual([{ start: 0, end: 1301 }]);
    expect(new BucketPlan([]).buckets).toEqual([]);
  });

  it('names the tensor that does not fit, and rejects bad sizes', () => {
    const plan = new BucketPlan(SIZES);
    const tensors = tensorsOf('plan', 1);
    tensors[4] = new Float32Array(999);
    expect(() => plan.check(tensors, 'grads')).toThrow(/grads: tensor 4 has 999 values, the plan says 1000/);
    expect(() => plan.check(tensors.slice(1), 'grads')).toThrow(/expected 7 tensors, got 6/);
    expect(() => new BucketPlan([1, -2])).toThrow(/tensor 1 has an invalid size -2/);
    expect(() => new BucketPlan([1], { bucketBytes: 6 })).toThrow(
      /bucketBytes must be a positive multiple of 4/,
    );
  });
});

describe.skipIf(!redisUrl)('bucketed all-reduce against a real redis-server', () => {
  const groups: Communicator[][] = [];
  afterAll(async () => {
    await Promise.all(groups.map(closeGroup));
  });

  it('ring over buckets equals the ring over each tensor with the same bits on every rank', async () => {
    const group = await openGroup(redisUrl as string, 3);
    groups.push(group);
    const plan = new BucketPlan(SIZES, { bucketBytes: 4 * 300 });
    const perRank = group.map((_, r) => tensorsOf('ring', r));
    const results = await Promise.all(
      group.map((c, r) => allReduceTensors(c, plan, perRank[r] as Float32Array[], { op: 'mean' })),
    );
    for (const res of results)
      res.forEach((t, i) => expect(sameBits(t, results[0]?.[i] as Float32Array)).toBe(true));
    SIZES.forEach((n, i) => {
      for (let j = 0; j < n; j++) {
        const vals = perRank.map((ts) => (ts[i] as Float32Array)[j] as number);
        const ref = vals.reduce((a, v) => a + v, 0) / 3;
        const abs = vals.reduce((a, v) => a + Math.abs(v), 0);
        const bound = (2 * 2 ** -24 * abs) / 3 + 2 ** -24 * Math.abs(ref) + 2 ** -148;
        expect(Math.abs((results[0]?.[i]?.[j] as number) - ref)).toBeLessThanOrEqual(bound);
      }
    });
  });

  it('exact mode over buckets: micro-batch k on rank k mod N gives the same bits for N = 1, 2, 4', async () => {
    const microBatches = Array.from({ length: 8 }, (_, k) => tensorsOf('exact', k));
    const plan = new BucketPlan(SIZES, { bucketBytes: 4 * 500 });
    let reference: Float32Array[] | undefined;
    for (const n of [1, 2, 4]) {
      const group = await openGroup(redisUrl as string, n, { chunkBytes: 1024 });
      groups.push(group);
      const results = await Promise.all(
        group.map((c, r) =>
          allReduceExactTensors(
            c,
            plan,
            microBatches.filter((_, k) => k % n === r),
            { totalContributions: 8, op: 'mean' },
          ),
        ),
      );
      reference ??= results[0];
      for (const res of results)
        res.forEach((t, i) => expect(sameBits(t, reference?.[i] as Float32Array)).toBe(true));
    }
  });
});
