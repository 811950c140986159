import { CollectiveArgumentError, CollectiveProtocolError, type NonFiniteReport } from './errors.js';
import {
  blockCount,
  blockExponents,
  dequantiseRange,
  fractionBits,
  quantiseRange,
  scalesOf,
} from './exact.js';
import { bytesOf, lanesFrom, maxFloat32, sumFloat32, sumFloat64, sumInt32, type Combine } from './lanes.js';
import { firstNonFinite, nonFiniteFailure, reportOf } from './non-finite.js';
import type { ResolvedOptions } from './options.js';
import { ringAllReduce } from './ring.js';
import { starAllGather } from './star.js';
import type { OpTransport } from './transport.js';

export type ReduceOp = 'sum' | 'mean' | 'max';

export interface ExactOptions {
  /** Contributions over all ranks (same value on every rank), e.g. the micro-batches of one optimiser step. */
  totalContributions: number;
  /** `mean` divides the exact sum by totalContributions, once. Default `sum`. */
  op?: 'sum' | 'mean';
  /** Vector length; needed only on a rank that passes no contributions. */
  length?: number;
  /** Write the result here (same length, not overlapping any contribution) instead of a new array. */
  out?: Float32Array;
}

export interface ExactArgs {
  total: number;
  op: 'sum' | 'mean';
  length: number;
  fractionBits: number;
  out: Float32Array;
}

function overlaps(a: Float32Array, b: Float32Array): boolean {
  return (
    a.buffer === b.buffer &&
    a.byteOffset < b.byteOffset + b.byteLength &&
    b.byteOffset < a.byteOffset + a.byteLength
  );
}

/** The result array: the caller's `out` (checked) or a new one. */
export function checkOut(
  out: Float32Array | undefined,
  length: number,
  inputs: readonly Float32Array[],
  what: string,
): Float32Array {
  if (out === undefined) return new Float32Array(length);
  if (!(out instanceof Float32Array)) throw new TypeError(`${what}: options.out must be a Float32Array`);
  if (out.length !== length)
    throw new RangeError(`${what}: options.out has ${out.length} values, expected ${length}`);
  if (inputs.some((x) => overlaps(out, x))) throw new RangeError(`${what}: options.out overlaps an input`);
  return out;
}

/** Index of the first non-finite value in a[start, end), or -1. */
function firstNonFiniteIn(a: Float32Array, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const v = a[i] as number;
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Tracks the lowest non-finite index seen over the finished slices. */
class NonFiniteWatch {
  first = -1;

  check(a: Float32Array, start: number, end: number): void {
    const i = firstNonFiniteIn(a, start, end);
    if (i >= 0 && (this.first < 0 || i < this.first)) this.first = i;
  }
}

export async function allReduceRingBody(
  t: OpTransport,
  x: Float32Array,
  op: ReduceOp,
  allowNonFinite: boolean,
  data: Float32Array,
): Promise<Float32Array> {
  const n = t.worldSize;
  const watch = new NonFiniteWatch();
  await ringAllReduce(t, {
    data,
    combine: op === 'max' ? maxFloat32 : sumFloat32,
    phases: ['rs', 'ag'],
    source: x,
    complete: (a, b) => {
      if (op === 'mean') for (let i = a; i < b; i++) data[i] = (data[i] as number) / n;
    },
    finish: (a, b) => {
      if (!allowNonFinite) watch.check(data, a, b);
    },
  });
  // The result has the same bits on every rank, so every rank takes this branch alike.
  if (watch.first >= 0) throw await nonFiniteFailure(t, reportOf(t.rank, 0, x, firstNonFinite(x)), data);
  return data;
}

/** Validates exact-mode arguments locally (before any message is sent). */
export function checkExactArgs(
  contributions: readonly Float32Array[],
  options: ExactOptions,
  o: ResolvedOptions,
): ExactArgs {
  if (!Array.isArray(contributions)) throw new TypeError('allReduceExact: contributions must be an array');
  const total = options?.totalContributions;
  if (!Number.isSafeInteger(total) || total < 1) {
    throw new RangeError(`allReduceExact: totalContributions must be a positive integer (got ${total})`);
  }
  if (contributions.length > total) {
    throw new RangeError(
      `allReduceExact: rank ${o.rank} passes ${contributions.length} contributions, more than totalContributions ${total}`,
    );
  }
  const op = options.op ?? 'sum';
  if (op !== 'sum' && op !== 'mean')
    throw new TypeError(`allReduceExact: op must be "sum" or "mean" (got ${op})`);
  let length = options.length;
  contributions.forEach((c, i) => {
    if (!(c instanceof Float32Array))
      throw new TypeError(`allReduceExact: contribution ${i} is not a Float32Array`);
    length ??= c.length;
    if (c.length !== length) {
      throw new RangeError(`allReduceExact: contribution ${i} has ${c.length} values, expected ${length}`);
    }
  });
  if (length === undefined || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError('allReduceExact: pass options.length on a rank without contributions');
  }
  const out = checkOut(options.out, length, contributions, 'allReduceExact');
  return { total, op, length, fractionBits: fractionBits(total, o.exactLanes), out };
}

const HEAD = 3; // exponent vector: [T, -T, any non-finite, E_0 .. E_{blocks-1}]

/**
 * Max over ranks of the exponent vectors. An all-gather (one hop) rather than a ring (2(N-1) hops): the vectors are
 * 1/256 of the data, and max is exact, so every rank computes the same result locally.
 */
async function agreeOnExponents(t: OpTransport, local: Float32Array): Promise<Float32Array> {
  const gathered = await starAllGather(t, 'xag', bytesOf(local, 0, local.length));
  const out = new Float32Array(local.length).fill(-Infinity);
  gathered.forEach((buf, from) => {
    if (buf.byteLength !== local.byteLength) {
      throw new CollectiveProtocolError(
        `${t.label} #${t.sequence}: rank ${from} sent ${buf.byteLength / 4 - HEAD} block exponents but rank ` +
          `${t.rank} has ${local.length - HEAD}: do all ranks pass the same length and exactBlockSize?`,
        from,
      );
    }
    maxFloat32(out, out, lanesFrom(out, buf, out.length));
  });
  return out;
}

/** Integer lanes reused from one exact collective to the next (they never leave the collective). */
export class LaneScratch {
  private int32: Int32Array | undefined;
  private float64: Float64Array | undefined;

  int32Of(n: number): Int32Array {
    if (!this.int32 || this.int32.length < n) this.int32 = new Int32Array(n);
    return this.int32.subarray(0, n);
  }

  float64Of(n: number): Float64Array {
    if (!this.float64 || this.float64.length < n) this.float64 = new Float64Array(n);
    return this.float64.subarray(0, n);
  }
}

export async function allReduceExactBody(
  t: OpTransport,
  contributions: readonly Float32Array[],
  a: ExactArgs,
  o: ResolvedOptions,
  scratch: LaneScratch,
): Promise<Float32Array> {
  const where = `${t.label} #${t.sequence}`;
  const block = o.exactBlockSize;
  const local = new Float32Array(HEAD + blockCount(a.length, block)).fill(-Infinity);
  local[0] = a.total;
  local[1] = -a.total;
  const bad: NonFiniteReport | undefined = blockExponents(contributions, block, local, HEAD, t.rank);
  local[2] = bad ? 1 : 0;
  const exponents = await agreeOnExponents(t, local);
  if (exponents[0] !== -(exponents[1] as number)) {
    throw new CollectiveArgumentError(
      `${where}: ranks disagree on totalContributions (values from ${-(exponents[1] as number)} to ${exponents[0]})`,
    );
  }
  if ((exponents[2] as number) > 0) throw await nonFiniteFailure(t, bad, undefined);

  // Integer lanes: values [0, L) then this rank's contribution count, so the group can check the total.
  const length = a.length;
  const scales = scalesOf(exponents, HEAD, a.fractionBits);
  const out = a.out;
  let overflow = -1;
  const divisor = a.op === 'mean' ? a.total : 1;
  let count = -1;
  const reduce = async <T extends Int32Array | Float64Array>(acc: T, combine: Combine<T>): Promise<void> => {
    await ringAllReduce(t, {
      data: acc,
      combine,
      phases: ['rs', 'ag'],
      prepare: (start, end) => {
        quantiseRange(acc, contributions, scales, block, start, Math.min(end, length));
        if (end > length) acc[length] = contributions.length;
      },
      gatherIntoData: false,
      finish: (start, end, values) => {
        const stop = Math.min(end, length);
        const at = dequantiseRange(
          out,
          values,
          scales,
          exponents,
          HEAD,
          a.total,
          block,
          start,
          stop,
          divisor,
        );
        if (at >= 0 && (overflow < 0 || at < overflow)) overflow = at;
        if (end > length) count = values[length - start] as number;
      },
    });
  };
  // Every lane is written by `prepare` before it is read, so reused scratch needs no clearing.
  if (o.exactLanes === 'int32') await reduce(scratch.int32Of(length + 1), sumInt32);
  else await reduce(scratch.float64Of(length + 1), sumFloat64);
  if (count !== a.total) {
    throw new CollectiveArgumentError(
      `${where}: the ranks passed ${count} contributions in all, but totalContributions is ${a.total}`,
    );
  }
  if (overflow >= 0) throw await nonFiniteFailure(t, undefined, out);
  return out;
}
