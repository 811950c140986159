import type { ExactLanes } from './options.js';
import type { NonFiniteReport } from './errors.js';

/**
 * Exact mode, the math. Per block b of `blockSize` values, E_b is the smallest integer (at least -126) with
 * |x| < 2^E_b for every value of the block in every contribution on every rank (a max all-reduce). Each value is
 * rounded (half to even) to an integer on the grid 2^(E_b - k): q = round(x * 2^(k - E_b)), so |q| <= 2^k. k is the
 * largest number of fraction bits for which T contributions cannot overflow the lanes (T * 2^k <= 2^31 - 1 for
 * int32, <= 2^53 for float64), so every partial sum in any order is exact. The integer sum is converted back once: sum * 2^(E_b - k).
 */

const ROUND_MAGIC = 6755399441055744; // 1.5 * 2^52: (v + M) - M rounds |v| <= 2^51 to an integer, half to even

/** Fraction bits k for `total` contributions. */
export function fractionBits(total: number, lanes: ExactLanes): number {
  const limit = lanes === 'int32' ? 2 ** 31 - 1 : 2 ** 53;
  let k = lanes === 'int32' ? 30 : 51;
  while (k > 0 && total * 2 ** k > limit) k--;
  if (k < 8) {
    throw new RangeError(
      `exact mode: ${total} contributions leave only ${k} fraction bits in ${lanes} lanes` +
        (lanes === 'int32' ? '; use exactLanes "float64"' : ''),
    );
  }
  return k;
}

export interface ExactPrecision {
  fractionBits: number;
  /**
   * |sum - exact sum| <= sumBound * max(M_b, scaleFloor) + half an fp32 ulp of the result, M_b = max |x| in the
   * block over all contributions.
   */
  sumBound: number;
  /** The same for op "mean" (result = sum / T). */
  meanBound: number;
  /**
   * 2^-127 when k <= 22, else 0. It only matters in a block whose largest value is denormal: E_b stays at -126 there,
   * so the grid step 2^(-126-k) can exceed 2^-k * M_b. With k >= 23 that grid holds every denormal exactly.
   */
  scaleFloor: number;
}

/** The documented error bound of exact mode for `total` contributions. */
export function exactPrecision(total: number, lanes: ExactLanes = 'int32'): ExactPrecision {
  const k = fractionBits(total, lanes);
  // Each rounding errs by at most half a grid step, 2^(E_b-k-1). A block with a normal maximum has
  // M_b >= 2^(E_b-1), so that is <= 2^-k * M_b; a block with a denormal maximum has E_b = -126, so it is
  // 2^-k * 2^-127, and zero when the grid 2^(-126-k) is at most 2^-149 (every float32 is a multiple of 2^-149).
  return {
    fractionBits: k,
    sumBound: total * 2 ** -k,
    meanBound: 2 ** -k,
    scaleFloor: k >= 23 ? 0 : 2 ** -127,
  };
}

export function blockCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

function nonFiniteName(x: number): NonFiniteReport['value'] {
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}

/**
 * Writes each block's exponent E_b (or -Infinity for an all-zero block) of the local contributions into
 * `out[offset + b]`, taking the max with what is there. Returns the first non-finite value found, if any.
 */
export function blockExponents(
  contributions: readonly Float32Array[],
  blockSize: number,
  out: Float32Array,
  offset: number,
  rank: number,
): NonFiniteReport | undefined {
  let bad: NonFiniteReport | undefined;
  for (let c = 0; c < contributions.length; c++) {
    const x = contributions[c] as Float32Array;
    const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
    for (let start = 0, b = offset; start < x.length; start += blockSize, b++) {
      const end = Math.min(x.length, start + blockSize);
      let m = 0; // largest |x| as bits: the order of non-negative floats equals the order of their bit patterns
      for (let i = start; i < end; i++) {
        const a = (bits[i] as number) & 0x7fffffff;
        if (a > m) m = a;
      }
      if (m >= 0x7f800000) {
        if (!bad) {
          let i = start;
          while (Number.isFinite(x[i] as number)) i++;
          bad = { rank, contribution: c, index: i, value: nonFiniteName(x[i] as number) };
        }
        continue;
      }
      const field = m >>> 23;
      const e = m === 0 ? -Infinity : field === 0 ? -126 : field - 126;
      if (e > (out[b] as number)) out[b] = e;
    }
  }
  return bad;
}

/** Per block: the factor 2^(k - E_b) that puts values on the integer grid (0 for an all-zero block). */
export function scalesOf(exponents: Float32Array, expOffset: number, k: number): Float64Array {
  const scales = new Float64Array(exponents.length - expOffset);
  for (let b = 0; b < scales.length; b++) {
    const e = exponents[expOffset + b] as number;
    scales[b] = e === -Infinity ? 0 : 2 ** (k - e);
  }
  return scales;
}

/** Writes acc[i] = sum over contributions of round(x[i] * scale) for i in [start, end). */
export function quantiseRange(
  acc: Int32Array | Float64Array,
  contributions: readonly Float32Array[],
  scales: Float64Array,
  blockSize: number,
  start: number,
  end: number,
): void {
  if (contributions.length === 0) acc.fill(0, start, end);
  // Plain loops (no closures): this and dequantiseRange are the hot paths of exact mode.
  for (let c = 0; c < contributions.length; c++) {
    const x = contributions[c] as Float32Array;
    for (let a = start; a < end;) {
      const b = (a / blockSize) | 0;
      const stop = Math.min(end, (b + 1) * blockSize);
      const s = scales[b] as number;
      if (c === 0) {
        for (let i = a; i < stop; i++) acc[i] = (x[i] as number) * s + ROUND_MAGIC - ROUND_MAGIC;
      } else {
        for (let i = a; i < stop; i++) {
          acc[i] = (acc[i] as number) + ((x[i] as number) * s + ROUND_MAGIC - ROUND_MAGIC);
        }
      }
      a = stop;
    }
  }
}

/**
 * Writes out[i] = sums[i - start] / scale (/ divisor) for i in [start, end): one exact product, one rounding to float32
 * (two roundings, double then float, for a mean). Returns the first index that overflowed float32, or -1; only
 * blocks whose bound |sum| < total * 2^E_b reaches 2^127 can overflow, so only those are checked.
 */
export function dequantiseRange(
  out: Float32Array,
  sums: Int32Array | Float64Array,
  scales: Float64Array,
  exponents: Float32Array,
  expOffset: number,
  total: number,
  blockSize: number,
  start: number,
  end: number,
  divisor: number,
): number {
  let overflow = -1;
  for (let a = start; a < end;) {
    const b = (a / blockSize) | 0;
    const stop = Math.min(end, (b + 1) * blockSize);
    const s = scales[b] as number;
    if (s === 0) out.fill(0, a, stop);
    else {
      const unit = 1 / s; // a power of two, so exact
      if (divisor === 1) for (let i = a; i < stop; i++) out[i] = (sums[i - start] as number) * unit;
      else for (let i = a; i < stop; i++) out[i] = ((sums[i - start] as number) * unit) / divisor;
      if (overflow < 0 && total * 2 ** (exponents[expOffset + b] as number) >= 2 ** 127) {
        for (let i = a; i < stop; i++) {
          if (!Number.isFinite(out[i] as number)) {
            overflow = i;
            break;
          }
        }
      }
    }
    a = stop;
  }
  return overflow;
}
