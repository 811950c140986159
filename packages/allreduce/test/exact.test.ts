import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import {
  CollectiveArgumentError,
  NonFiniteError,
  exactPrecision,
  type Communicator,
  type ExactLanes,
  type ExactPrecision,
} from '../src/index.js';
import { closeGroup, openGroup, rngFor, sameBits, wideValues } from './group.js';

const redisUrl = serviceUrl('redis');
const LENGTH = 20_011; // not a multiple of the block size or the world sizes
const TOTAL = 12;

const BLOCK = 256; // the default exactBlockSize
const PRECISION_LENGTH = 17 * BLOCK + 7;
const TINY_BLOCK = 0; // small denormals of both signs only
const DENORMAL_BLOCK = 1; // 2^-149 everywhere
const LARGE_DENORMAL_BLOCK = 2; // denormals up to 2^-126 (exclusive) and zeros

/** Wide values, with three blocks whose largest value is denormal. */
function precisionInputs(total: number): Float32Array[] {
  return Array.from({ length: total }, (_, k) => {
    const rng = rngFor('precision', total, k);
    const x = wideValues(rng, PRECISION_LENGTH);
    for (let i = 0; i < BLOCK; i++) {
      const sign = rng.int(2) === 0 ? -1 : 1;
      x[TINY_BLOCK * BLOCK + i] = sign * rng.int(4) * 2 ** -149;
      x[DENORMAL_BLOCK * BLOCK + i] = 2 ** -149;
      x[LARGE_DENORMAL_BLOCK * BLOCK + i] = rng.int(4) === 0 ? 0 : sign * rng.int(1 << 23) * 2 ** -149;
    }
    return x;
  });
}

/** Neumaier-compensated float64 sum: exact enough to judge bounds far below the float64 rounding of a plain sum. */
function accurateSum(values: readonly number[]): number {
  let sum = 0;
  let carry = 0;
  for (const v of values) {
    const t = sum + v;
    carry += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  }
  return sum + carry;
}

const halfUlp = (r: number): number => Math.max(Math.abs(r) * 2 ** -24, 2 ** -150);

/**
 * Checks every element against |error| <= bound * max(M_b, scaleFloor) + half an ulp; returns the worst
 * error / allowance ratios (<= 1 when the bound holds) and the largest mean error seen.
 */
function checkPrecision(
  xs: readonly Float32Array[],
  sum: Float32Array,
  mean: Float32Array,
  p: ExactPrecision,
): { sum: number; mean: number; meanError: number } {
  const total = xs.length;
  const worst = { sum: 0, mean: 0, meanError: 0 };
  for (let start = 0; start < PRECISION_LENGTH; start += BLOCK) {
    const end = Math.min(PRECISION_LENGTH, start + BLOCK);
    let blockMax = 0;
    for (const x of xs)
      for (let i = start; i < end; i++) blockMax = Math.max(blockMax, Math.abs(x[i] as number));
    const scale = Math.max(blockMax, p.scaleFloor);
    for (let i = start; i < end; i++) {
      const ref = accurateSum(xs.map((x) => x[i] as number));
      const errSum = Math.abs((sum[i] as number) - ref);
      const errMean = Math.abs((mean[i] as number) - ref / total);
      const allowSum = p.sumBound * scale + halfUlp(ref) * 1.0000001;
      const allowMean = p.meanBound * scale + halfUlp(ref / total) * 1.0000001;
      if (!(errSum <= allowSum))
        throw new Error(`T=${total} sum at ${i}: error ${errSum} > bound ${allowSum}`);
      if (!(errMean <= allowMean))
        throw new Error(`T=${total} mean at ${i}: error ${errMean} > bound ${allowMean}`);
      worst.sum = Math.max(worst.sum, errSum / allowSum);
      worst.mean = Math.max(worst.mean, errMean / allowMean);
      worst.meanError = Math.max(worst.meanError, errMean);
    }
  }
  return worst;
}

/** Splits indices 0..total-1 into `n` ranks: round-robin (k = r mod N), contiguous, or uneven, then shuffles each. */
function grouping(
  kind: 'strided' | 'contiguous' | 'uneven',
  n: number,
  total: number,
  seed: number,
): number[][] {
  const ranks: number[][] = Array.from({ length: n }, () => []);
  for (let k = 0; k < total; k++) {
    if (kind === 'strided') ranks[k % n]?.push(k);
    else if (kind === 'contiguous') ranks[Math.floor((k * n) / total)]?.push(k);
    else ranks[k < total - n + 1 ? 0 : k - (total - n)]?.push(k); // rank 0 takes most, the others one each
  }
  return ranks.map((ks, r) => {
    const order = rngFor('order', kind, n, seed, r).permutation(ks.length);
    return Array.from(order, (i) => ks[i] as number);
  });
}

async function exactSum(
  group: Communicator[],
  contributions: Float32Array[],
  split: number[][],
  op: 'sum' | 'mean' = 'sum',
  length = LENGTH,
): Promise<Float32Array[]> {
  return Promise.all(
    group.map((c, r) =>
      c.allReduceExact(
        (split[r] as number[]).map((k) => contributions[k] as Float32Array),
        { totalContributions: contributions.length, op, length },
      ),
    ),
  );
}

describe.skipIf(!redisUrl)('exact mode against a real redis-server', () => {
  const groups = new Map<string, Communicator[]>();
  const group = async (n: number, lanes: ExactLanes, chunkBytes: number): Promise<Communicator[]> => {
    const key = `${n}/${lanes}/${chunkBytes}`;
    let g = groups.get(key);
    if (!g) {
      g = await openGroup(redisUrl as string, n, { exactLanes: lanes, chunkBytes, timeoutS: 20 });
      groups.set(key, g);
    }
    return g;
  };
  let contributions: Float32Array[];
  beforeAll(() => {
    contributions = Array.from({ length: TOTAL }, (_, k) => wideValues(rngFor('exact', k), LENGTH));
  });
  afterAll(async () => {
    await Promise.all([...groups.values()].map(closeGroup));
  });

  for (const lanes of ['int32', 'float64'] as const) {
    it(`${lanes} lanes: one multiset over N=1..4, groupings, orders and chunk sizes gives identical bits`, async () => {
      let reference: Float32Array | undefined;
      let runs = 0;
      for (const n of [1, 2, 3, 4]) {
        for (const kind of ['strided', 'contiguous', 'uneven'] as const) {
          const chunkBytes = [1024, 8192, 65536][runs % 3] as number;
          const results = await exactSum(
            await group(n, lanes, chunkBytes),
            contributions,
            grouping(kind, n, TOTAL, runs),
          );
          reference ??= results[0] as Float32Array;
          for (const res of results) expect(sameBits(res, reference)).toBe(true);
          runs++;
        }
      }
      expect(runs).toBe(12);
    });

    for (const total of [1, 12, 256]) {
      it(`${lanes} lanes, T=${total}: error against an exact reference stays within the documented bound`, async () => {
        const xs = precisionInputs(total);
        const split = grouping('strided', 3, total, 0);
        const g = await group(3, lanes, 8192);
        const [sum] = await exactSum(g, xs, split, 'sum', PRECISION_LENGTH);
        const [mean] = await exactSum(g, xs, split, 'mean', PRECISION_LENGTH);
        const precision = exactPrecision(total, lanes);
        const worst = checkPrecision(xs, sum as Float32Array, mean as Float32Array, precision);
        expect(worst.sum).toBeLessThanOrEqual(1);
        expect(worst.mean).toBeLessThanOrEqual(1);
        expect(worst.meanError).toBeGreaterThan(0); // the check really compared rounded values
        // Block 1 holds 2^-149 in every contribution. With k >= 23 the grid holds it exactly; with k = 22
        // (int32, T = 256) it rounds to 0, an error of T * 2^-149 = T * 2^-k * 2^-127 that only the floor covers.
        const denormalSum = (sum as Float32Array)[DENORMAL_BLOCK * BLOCK] as number;
        if (precision.scaleFloor === 0) expect(denormalSum).toBe(total * 2 ** -149);
        else {
          expect(precision.fractionBits).toBe(22);
          expect(denormalSum).toBe(0);
          expect(total * 2 ** -149).toBeGreaterThan(precision.sumBound * 2 ** -149 + 2 ** -150);
        }
      });
    }
  }

  it('allReduce(x, { mode: "exact" }) is allReduceExact([x]) with one contribution per rank', async () => {
    const g = await group(4, 'int32', 8192);
    const xs = contributions.slice(0, 4);
    const viaMode = await Promise.all(
      g.map((c, r) => c.allReduce(xs[r] as Float32Array, { mode: 'exact', op: 'mean' })),
    );
    const direct = await Promise.all(
      g.map((c, r) => c.allReduceExact([xs[r] as Float32Array], { totalContributions: 4, op: 'mean' })),
    );
    for (const res of [...viaMode, ...direct]) expect(sameBits(res, viaMode[0] as Float32Array)).toBe(true);
    const single = await (
      await group(1, 'int32', 8192)
    )[0]?.allReduceExact(xs, { totalContributions: 4, op: 'mean' });
    expect(sameBits(single as Float32Array, viaMode[0] as Float32Array)).toBe(true);
    const maxes = await Promise.all(
      g.map((c, r) => c.allReduce(xs[r] as Float32Array, { mode: 'exact', op: 'max' })),
    );
    for (let i = 0; i < LENGTH; i++) {
      expect(maxes[0]?.[i]).toBe(Math.max(...xs.map((x) => x[i] as number)));
    }
  });

  it('a rank without contributions (more ranks than contributions) still gets the same bits', async () => {
    const g = await group(4, 'int32', 8192);
    const three = contributions.slice(0, 3);
    const results = await Promise.all(
      g.map((c, r) =>
        c.allReduceExact(r < 3 ? [three[r] as Float32Array] : [], { totalContributions: 3, length: LENGTH }),
      ),
    );
    const alone = await (await group(1, 'int32', 8192))[0]?.allReduceExact(three, { totalContributions: 3 });
    for (const res of results) expect(sameBits(res, alone as Float32Array)).toBe(true);
  });

  it('NaN or Infinity in any contribution gives the same clear error on every rank, and the group goes on', async () => {
    const g = await group(3, 'int32', 8192);
    const bad = contributions.map((x) => x.slice());
    (bad[7] as Float32Array)[1234] = NaN; // contribution 7 sits on rank 1 (strided: 7 mod 3)
    (bad[5] as Float32Array)[99] = -Infinity; // contribution 5 sits on rank 2
    const split = grouping('strided', 3, TOTAL, 0);
    const errors = await Promise.all(
      g.map((c, r) =>
        c
          .allReduceExact(
            (split[r] as number[]).map((k) => bad[k] as Float32Array),
            { totalContributions: TOTAL, length: LENGTH },
          )
          .then(
            () => undefined,
            (e: unknown) => e,
          ),
      ),
    );
    for (const e of errors) {
      expect(e).toBeInstanceOf(NonFiniteError);
      const err = e as NonFiniteError;
      expect(err.message).toBe((errors[0] as Error).message);
      expect(err.message).toMatch(/rank 1 has NaN at index 1234/);
      expect(err.message).toMatch(/rank 2 has -Infinity at index 99/);
      expect(err.reports.map((rep) => rep.rank)).toEqual([1, 2]);
    }
    const after = await exactSum(g, contributions, split);
    expect(sameBits(after[0] as Float32Array, after[2] as Float32Array)).toBe(true);
    for (const c of g) expect(c.failure).toBeUndefined();
  });

  it('ring mode names the rank of a NaN too, and an fp32 overflow is reported as such', async () => {
    const g = await group(2, 'int32', 8192);
    const x = new Float32Array(10).fill(1);
    const y = x.slice();
    y[3] = NaN;
    const errors = await Promise.all(
      [g[0]?.allReduce(x), g[1]?.allReduce(y)].map((p) =>
        (p as Promise<Float32Array>).catch((e: unknown) => e),
      ),
    );
    for (const e of errors) expect((e as Error).message).toMatch(/rank 1 has NaN at index 3/);
    const big = new Float32Array(4).fill(3e38);
    const over = await Promise.all(
      g.map((c) => c.allReduceExact([big], { totalContributions: 2 }).catch((e: unknown) => e)),
    );
    for (const e of over) {
      expect(e).toBeInstanceOf(NonFiniteError);
      expect((e as NonFiniteError).overflowIndex).toBe(0);
      expect((e as Error).message).toMatch(/overflows float32 at index 0/);
    }
    const allowed = await Promise.all([
      g[0]?.allReduce(x, { allowNonFinite: true }),
      g[1]?.allReduce(y, { allowNonFinite: true }),
    ]);
    expect(Number.isNaN(allowed[0]?.[3])).toBe(true);
  });

  it('ranks that disagree on totalContributions, or whose counts do not add up, all get the same error', async () => {
    const g = await group(2, 'int32', 8192);
    const x = new Float32Array(300).fill(0.5);
    const disagree = await Promise.all([
      g[0]?.allReduceExact([x], { totalContributions: 2 }).catch((e: unknown) => e),
      g[1]?.allReduceExact([x], { totalContributions: 3 }).catch((e: unknown) => e),
    ]);
    for (const e of disagree) {
      expect(e).toBeInstanceOf(CollectiveArgumentError);
      expect((e as Error).message).toMatch(/disagree on totalContributions \(values from 2 to 3\)/);
    }
    const short = await Promise.all(
      g.map((c) => c.allReduceExact([x], { totalContributions: 3 }).catch((e: unknown) => e)),
    );
    for (const e of short)
      expect((e as Error).message).toMatch(/passed 2 contributions in all, but totalContributions is 3/);
    const fine = await Promise.all([
      g[0]?.allReduceExact([x, x], { totalContributions: 3 }),
      g[1]?.allReduceExact([x], { totalContributions: 3 }),
    ]);
    expect(Array.from(fine[0] as Float32Array).every((v) => v === 1.5)).toBe(true);
  });

  it('rejects bad local arguments before sending anything', async () => {
    const [c] = await group(1, 'int32', 8192);
    const comm = c as Communicator;
    const x = new Float32Array(3);
    await expect(async () => comm.allReduceExact([x], { totalContributions: 0 })).rejects.toThrow(
      /totalContributions must be a positive integer/,
    );
    await expect(async () =>
      comm.allReduceExact([x, new Float32Array(4)], { totalContributions: 2 }),
    ).rejects.toThrow(/contribution 1 has 4 values, expected 3/);
    await expect(async () => comm.allReduceExact([], { totalContributions: 2 })).rejects.toThrow(
      /options.length/,
    );
    await expect(async () => comm.allReduceExact([x, x], { totalContributions: 1 })).rejects.toThrow(
      /more than totalContributions/,
    );
    await expect(async () => comm.allReduceExact([x], { totalContributions: 2 ** 30 })).rejects.toThrow(
      /use exactLanes "float64"/,
    );
    expect(comm.failure).toBeUndefined();
  });
});
