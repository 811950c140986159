export interface SampleStats {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1), 0 for a single value — as the seed's table. */
  sd: number;
  /** Sample variance (n − 1), 0 for a single value. */
  variance: number;
  min: number;
  max: number;
  median: number;
}

export interface BoxStats {
  q1: number;
  median: number;
  q3: number;
  /** Furthest values within 1.5 IQR of the box (matplotlib's default whiskers). */
  whiskerLow: number;
  whiskerHigh: number;
  outliers: number[];
}

const ascending = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);

function checkFinite(values: readonly number[]): void {
  const bad = values.find((v) => !Number.isFinite(v));
  if (bad !== undefined) throw new RangeError(`statistics need finite values, got ${bad}`);
}

/** Quantile p of sorted values with linear interpolation between order statistics (numpy's default). */
export function quantileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return (sorted[lo] as number) + (h - lo) * ((sorted[hi] as number) - (sorted[lo] as number));
}

/** Mean, sample sd and variance, range and median; null for no values. */
export function sampleStats(values: readonly number[]): SampleStats | null {
  if (values.length === 0) return null;
  checkFinite(values);
  const n = values.length;
  const sorted = ascending(values);
  // Shifted by the smallest value, so identical runs give exactly their value and a variance of exactly 0.
  const shift = sorted[0] as number;
  const meanOffset = values.reduce((s, v) => s + (v - shift), 0) / n;
  const mean = shift + meanOffset;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - shift - meanOffset) ** 2, 0) / (n - 1) : 0;
  return {
    n,
    mean,
    sd: Math.sqrt(variance),
    variance,
    min: sorted[0] as number,
    max: sorted[n - 1] as number,
    median: quantileSorted(sorted, 0.5),
  };
}

/** Tukey box: quartiles, whiskers at the furthest values within 1.5 IQR, the rest as outliers. */
export function boxStats(values: readonly number[]): BoxStats | null {
  if (values.length === 0) return null;
  checkFinite(values);
  const sorted = ascending(values);
  const q1 = quantileSorted(sorted, 0.25);
  const q3 = quantileSorted(sorted, 0.75);
  const reach = 1.5 * (q3 - q1);
  const inside = sorted.filter((v) => v >= q1 - reach && v <= q3 + reach);
  return {
    q1,
    median: quantileSorted(sorted, 0.5),
    q3,
    whiskerLow: Math.min(inside[0] as number, q1),
    whiskerHigh: Math.max(inside[inside.length - 1] as number, q3),
    outliers: sorted.filter((v) => v < q1 - reach || v > q3 + reach),
  };
}
