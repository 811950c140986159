import { CounterRng, type PurposePart } from '@lits-ddp/counter-rng';

/** The seed's 13 hard-coded LiTS test volumes (seed.md §2.2), in the seed's file order. */
export const LITS_TEST_IDS: readonly number[] = Object.freeze([
  17, 64, 27, 114, 74, 45, 61, 38, 106, 100, 117, 51, 62,
]);

/** The seed's 118 LiTS training volumes, in the seed's file order; with LITS_TEST_IDS they cover 0..130. */
export const LITS_TRAIN_IDS: readonly number[] = Object.freeze([
  48, 3, 23, 75, 22, 109, 73, 130, 115, 86, 121, 67, 97, 116, 14, 125, 52, 84, 129, 58, 49, 110, 43, 88, 25,
  4, 89, 50, 29, 94, 53, 16, 2, 46, 92, 113, 44, 15, 111, 124, 69, 47, 5, 104, 54, 37, 76, 119, 13, 34, 21,
  103, 80, 91, 82, 35, 19, 6, 72, 59, 105, 83, 20, 128, 120, 57, 101, 30, 28, 24, 8, 41, 31, 95, 63, 0, 126,
  11, 1, 85, 7, 33, 127, 56, 118, 70, 26, 81, 78, 40, 55, 122, 99, 71, 60, 42, 87, 9, 93, 108, 39, 18, 77, 90,
  68, 32, 102, 79, 12, 96, 112, 36, 65, 123, 66, 10, 107, 98,
]);

export interface Split {
  train: number[];
  test: number[];
}

/**
 * A reproducible train/test split for data sets other than LiTS: round(n · testFraction) ids (at least 1 when the
 * fraction is above 0 and n ≥ 2) drawn by a permutation from counter-rng keyed 'split'. Both lists come back sorted.
 */
export function seededSplit(ids: readonly number[], testFraction: number, seed: PurposePart): Split {
  if (!(testFraction >= 0 && testFraction < 1))
    throw new RangeError(`testFraction must be in [0, 1), got ${testFraction}`);
  if (new Set(ids).size !== ids.length) throw new RangeError('seededSplit: case ids must be unique');
  const n = ids.length;
  let testCount = Math.round(n * testFraction);
  if (testFraction > 0 && n >= 2) testCount = Math.min(n - 1, Math.max(1, testCount));
  const order = CounterRng.derive(seed, 'split').permutation(n);
  const test = Array.from(order.subarray(0, testCount), (i) => ids[i]!).sort((a, b) => a - b);
  const train = Array.from(order.subarray(testCount), (i) => ids[i]!).sort((a, b) => a - b);
  return { train, test };
}

/** The seed's split restricted to the ids present (e.g. a partial LiTS download). */
export function litsSeedSplit(ids: readonly number[]): Split {
  const present = new Set(ids);
  return {
    train: LITS_TRAIN_IDS.filter((id) => present.has(id)).sort((a, b) => a - b),
    test: LITS_TEST_IDS.filter((id) => present.has(id)).sort((a, b) => a - b),
  };
}
