import type { AllReduceOptions, Communicator } from './communicator.js';
import type { ExactOptions } from './reduce.js';

export const DEFAULT_BUCKET_BYTES = 25 << 20;

export interface BucketRange {
  /** First element, in the flat parameter order (all tensors concatenated). */
  start: number;
  end: number;
}

/**
 * Fixed buckets over many tensors in a flat parameter order: bucket b covers elements [start, end) of the tensors
 * laid end to end, so small tensors share a bucket and a large one spans several. The plan depends only on the
 * tensor sizes and the bucket size, so every rank and every world size gets the same buckets, and they are reduced
 * in the same order everywhere.
 */
export class BucketPlan {
  readonly sizes: readonly number[];
  readonly offsets: readonly number[];
  readonly totalElements: number;
  readonly buckets: readonly BucketRange[];

  constructor(tensorSizes: readonly number[], options: { bucketBytes?: number } = {}) {
    const bucketBytes = options.bucketBytes ?? DEFAULT_BUCKET_BYTES;
    if (!Number.isSafeInteger(bucketBytes) || bucketBytes < 4 || bucketBytes % 4 !== 0) {
      throw new RangeError(`BucketPlan: bucketBytes must be a positive multiple of 4 (got ${bucketBytes})`);
    }
    const offsets: number[] = [];
    let total = 0;
    tensorSizes.forEach((n, i) => {
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new RangeError(`BucketPlan: tensor ${i} has an invalid size ${n}`);
      }
      offsets.push(total);
      total += n;
    });
    const per = bucketBytes / 4;
    const buckets: BucketRange[] = [];
    for (let start = 0; start < total; start += per)
      buckets.push({ start, end: Math.min(total, start + per) });
    this.sizes = [...tensorSizes];
    this.offsets = offsets;
    this.totalElements = total;
    this.buckets = buckets;
  }

  /** Checks that `tensors` fit the plan, naming the first that does not. */
  check(tensors: readonly Float32Array[], what: string): void {
    if (tensors.length !== this.sizes.length) {
      throw new RangeError(`${what}: expected ${this.sizes.length} tensors, got ${tensors.length}`);
    }
    tensors.forEach((t, i) => {
      if (!(t instanceof Float32Array)) throw new TypeError(`${what}: tensor ${i} is not a Float32Array`);
      if (t.length !== this.sizes[i]) {
        throw new RangeError(`${what}: tensor ${i} has ${t.length} values, the plan says ${this.sizes[i]}`);
      }
    });
  }

  /** Copies bucket `b`'s values out of the tensors. */
  gather(tensors: readonly Float32Array[], b: number): Float32Array {
    const { start, end } = this.bucket(b);
    const out = new Float32Array(end - start);
    this.visit(start, end, (i, from, to, at) => out.set((tensors[i] as Float32Array).subarray(from, to), at));
    return out;
  }

  /** Copies a reduced bucket back into per-tensor outputs. */
  scatter(values: Float32Array, b: number, out: readonly Float32Array[]): void {
    const { start, end } = this.bucket(b);
    this.visit(start, end, (i, from, to, at) =>
      (out[i] as Float32Array).set(values.subarray(at, at + to - from), from),
    );
  }

  private bucket(b: number): BucketRange {
    const r = this.buckets[b];
    if (!r) throw new RangeError(`BucketPlan: no bucket ${b} (there are ${this.buckets.length})`);
    return r;
  }

  /** Calls fn(tensor, fromInTensor, toInTensor, offsetInBucket) for each tensor piece inside [start, end). */
  private visit(
    start: number,
    end: number,
    fn: (i: number, from: number, to: number, at: number) => void,
  ): void {
    for (let i = 0; i < this.sizes.length; i++) {
      const a = this.offsets[i] as number;
      const b = a + (this.sizes[i] as number);
      if (b <= start || a >= end || a === b) continue;
      const from = Math.max(start, a);
      const to = Math.min(end, b);
      fn(i, from - a, to - a, from - start);
    }
  }
}

/** All-reduces many tensors bucket by bucket; returns new tensors in the plan's order. */
export async function allReduceTensors(
  comm: Communicator,
  plan: BucketPlan,
  tensors: readonly Float32Array[],
  options: AllReduceOptions = {},
): Promise<Float32Array[]> {
  plan.check(tensors, 'allReduceTensors');
  const out = plan.sizes.map((n) => new Float32Array(n));
  for (let b = 0; b < plan.buckets.length; b++) {
    plan.scatter(await comm.allReduce(plan.gather(tensors, b), options), b, out);
  }
  return out;
}

/**
 * Exact mode over many tensors: `contributions[c]` is one contribution's list of tensors (e.g. one micro-batch's
 * gradients). Exponent blocks start at each bucket's start, so the bits depend on the plan, never on N.
 */
export async function allReduceExactTensors(
  comm: Communicator,
  plan: BucketPlan,
  contributions: readonly (readonly Float32Array[])[],
  options: Omit<ExactOptions, 'length'>,
): Promise<Float32Array[]> {
  contributions.forEach((c, i) => plan.check(c, `allReduceExactTensors contribution ${i}`));
  const out = plan.sizes.map((n) => new Float32Array(n));
  for (let b = 0; b < plan.buckets.length; b++) {
    const range = plan.buckets[b] as BucketRange;
    const parts = contributions.map((c) => plan.gather(c, b));
    const reduced = await comm.allReduceExact(parts, { ...options, length: range.end - range.start });
    plan.scatter(reduced, b, out);
  }
  return out;
}
