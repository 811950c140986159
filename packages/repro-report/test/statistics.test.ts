import { describe, expect, it } from 'vitest';
import { boxStats, quantileSorted, sampleStats } from '../src/index.js';

describe('sample statistics', () => {
  it('mean, sample variance (n − 1), sd, range and median', () => {
    const s = sampleStats([4, 1, 3, 2]);
    expect(s).toMatchObject({ n: 4, mean: 2.5, min: 1, max: 4, median: 2.5 });
    expect(s?.variance).toBeCloseTo(5 / 3, 15);
    expect(s?.sd).toBeCloseTo(Math.sqrt(5 / 3), 15);
  });

  it('identical runs give exactly their value and a variance of exactly 0', () => {
    const v = 0.49611392617225647;
    const s = sampleStats(Array.from({ length: 10 }, () => v));
    expect(s?.mean).toBe(v);
    expect(s?.variance).toBe(0);
    expect(s?.sd).toBe(0);
  });

  it('one value has sd 0; no values give null; non-finite values are refused', () => {
    expect(sampleStats([0.7])).toMatchObject({ n: 1, mean: 0.7, sd: 0, variance: 0 });
    expect(sampleStats([])).toBeNull();
    expect(() => sampleStats([0.5, Number.NaN])).toThrow(/finite/);
  });
});

describe('boxplot statistics', () => {
  it('quartiles interpolate linearly between order statistics (numpy default)', () => {
    const sorted = [1, 2, 3, 4, 10];
    expect(quantileSorted(sorted, 0.25)).toBe(2);
    expect(quantileSorted(sorted, 0.75)).toBe(4);
    expect(quantileSorted([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
  });

  it('whiskers reach the furthest values within 1.5 IQR; the rest are outliers', () => {
    expect(boxStats([10, 1, 3, 2, 4])).toEqual({
      q1: 2,
      median: 3,
      q3: 4,
      whiskerLow: 1,
      whiskerHigh: 4,
      outliers: [10],
    });
    const flat = boxStats([0.5, 0.5, 0.5]);
    expect(flat).toEqual({ q1: 0.5, median: 0.5, q3: 0.5, whiskerLow: 0.5, whiskerHigh: 0.5, outliers: [] });
    expect(boxStats([])).toBeNull();
  });
});
