import { describe, expect, it } from 'vitest';
import {
  distributedSampler,
  epochOrder,
  microBatchPlan,
  microBatchesForRank,
  rankMicroBatches,
  LITS_TEST_IDS,
  LITS_TRAIN_IDS,
  litsSeedSplit,
  seededSplit,
} from '../src/index.js';

const SIZES = [1, 2, 7, 13, 59, 118];
const WORLDS = [1, 2, 3, 4, 5];

describe('distributedSampler (PyTorch DistributedSampler semantics)', () => {
  for (const dropLast of [false, true]) {
    it(`every rank gets the same count and the same permutation; dropLast=${dropLast}`, () => {
      for (const size of SIZES)
        for (const worldSize of WORLDS) {
          const ranks = Array.from({ length: worldSize }, (_, rank) =>
            distributedSampler({ size, rank, worldSize, seed: 0, epoch: 3, dropLast }),
          );
          const expectedCount =
            dropLast && size % worldSize !== 0
              ? Math.max(0, Math.ceil((size - worldSize) / worldSize))
              : Math.ceil(size / worldSize);
          for (const r of ranks) expect(r.length).toBe(expectedCount);
          // Interleaving the ranks gives back the shared order (wrap-around padded, or truncated).
          const order = epochOrder(size, 0, 3);
          const interleaved = Array.from(
            { length: expectedCount * worldSize },
            (_, p) => ranks[p % worldSize]![Math.floor(p / worldSize)]!,
          );
          expect(interleaved).toEqual(
            Array.from({ length: expectedCount * worldSize }, (_, p) => order[p % size]!),
          );
          const union = new Set(ranks.flat());
          if (!dropLast) expect(union.size).toBe(size);
          else expect(union.size).toBe(Math.min(size, expectedCount * worldSize));
        }
    });
  }

  it('pads by wrap-around like the seed run: 13 test volumes on 2 ranks are 7 each, the first index repeated', () => {
    const r0 = distributedSampler({ size: 13, rank: 0, worldSize: 2, seed: 0, epoch: 0, shuffle: false });
    const r1 = distributedSampler({ size: 13, rank: 1, worldSize: 2, seed: 0, epoch: 0, shuffle: false });
    expect(r0).toEqual([0, 2, 4, 6, 8, 10, 12]);
    expect(r1).toEqual([1, 3, 5, 7, 9, 11, 0]);
    const t0 = distributedSampler({ size: 118, rank: 0, worldSize: 2, seed: 0, epoch: 0 });
    expect(t0.length).toBe(59);
  });

  it('each epoch has a new order; the same (seed, epoch) always gives the same one', () => {
    const orders = Array.from({ length: 6 }, (_, epoch) => Array.from(epochOrder(118, 42, epoch)));
    for (let a = 0; a < orders.length; a++)
      for (let b = a + 1; b < orders.length; b++) expect(orders[a]).not.toEqual(orders[b]);
    expect(Array.from(epochOrder(118, 42, 4))).toEqual(orders[4]);
    expect([...orders[0]!].sort((x, y) => x - y)).toEqual(Array.from({ length: 118 }, (_, i) => i));
    expect(Array.from(epochOrder(118, 43, 4))).not.toEqual(orders[4]);
  });

  it('rejects a rank outside the world', () => {
    expect(() => distributedSampler({ size: 5, rank: 2, worldSize: 2, seed: 0, epoch: 0 })).toThrow(
      /rank 2 is outside worldSize 2/,
    );
  });
});

describe('micro-batch plan (DESIGN.md §4 step 5)', () => {
  const base = { size: 59, seed: 7, epoch: 2, microBatchSize: 2, microBatchesPerStep: 4 };

  it('does not change when the number of workers changes, evenly spread or not', () => {
    const plan = microBatchPlan(base);
    for (const worldSize of [1, 2, 3, 4]) {
      const rebuilt = plan.map((step) => {
        const parts: number[][] = new Array<number[]>(step.length);
        for (let rank = 0; rank < worldSize; rank++) {
          const mine = rankMicroBatches(step, rank, worldSize);
          microBatchesForRank(step.length, rank, worldSize).forEach((k, i) => (parts[k] = mine[i]!));
        }
        return parts;
      });
      expect(rebuilt).toEqual(plan);
    }
    expect(microBatchPlan(base)).toEqual(plan);
  });

  it('micro-batch k of step t holds positions (t·K + k)·m … of the epoch order, wrapped at the end', () => {
    const plan = microBatchPlan(base);
    const order = epochOrder(59, 7, 2);
    expect(plan.length).toBe(Math.ceil(59 / 8));
    plan.forEach((step, t) =>
      step.forEach((mb, k) => {
        expect(mb).toEqual([0, 1].map((i) => order[((t * 4 + k) * 2 + i) % 59]));
      }),
    );
    const covered = new Set(plan.flat(2));
    expect(covered.size).toBe(59);
    const dropped = microBatchPlan({ ...base, dropLast: true });
    expect(dropped.length).toBe(Math.floor(59 / 8));
    expect(microBatchPlan({ ...base, epoch: 3 })).not.toEqual(plan);
  });

  it('rank r takes k ≡ r (mod N) and N must divide K', () => {
    expect(microBatchesForRank(8, 1, 4)).toEqual([1, 5]);
    expect(microBatchesForRank(8, 0, 1)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Uneven: 4 micro-batches over 3 ranks, rank 0 takes two; together they hold each k once.
    expect([0, 1, 2].map((r) => microBatchesForRank(4, r, 3))).toEqual([[0, 3], [1], [2]]);
    expect(() => microBatchesForRank(4, 0, 5)).toThrow(/worldSize 5 exceeds microBatchesPerStep 4/);
  });
});

describe('splits', () => {
  it("exports the seed's 13 test ids and 118 training ids, disjoint and covering 0..130", () => {
    expect([...LITS_TEST_IDS].sort((a, b) => a - b)).toEqual([
      17, 27, 38, 45, 51, 61, 62, 64, 74, 100, 106, 114, 117,
    ]);
    expect(LITS_TRAIN_IDS.length).toBe(118);
    expect(new Set([...LITS_TEST_IDS, ...LITS_TRAIN_IDS]).size).toBe(131);
    expect(Math.max(...LITS_TRAIN_IDS, ...LITS_TEST_IDS)).toBe(130);
    expect(litsSeedSplit([0, 1, 17, 64, 200])).toEqual({ train: [0, 1], test: [17, 64] });
  });

  it('seededSplit is reproducible, disjoint and sized by the fraction', () => {
    const ids = Array.from({ length: 40 }, (_, i) => i * 3);
    const a = seededSplit(ids, 0.1, 5);
    expect(a).toEqual(seededSplit(ids, 0.1, 5));
    expect(a.test.length).toBe(4);
    expect(new Set([...a.train, ...a.test]).size).toBe(40);
    expect(seededSplit(ids, 0.1, 6)).not.toEqual(a);
    expect(seededSplit([1, 2, 3], 0.01, 0).test.length).toBe(1);
    expect(() => seededSplit(ids, 1.5, 0)).toThrow(/testFraction must be in \[0, 1\)/);
  });
});
