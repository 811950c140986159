import type { Shape3 } from './grid.js';

/** The seed's notebook (seed.md §2.1): z forced to 512, 2× block mean, 128³ cube around the liver, raw HU. */
export interface SeedPresetConfig {
  preset: 'seed';
  targetSlices: number;
  downscale: number;
  cubeSize: number;
}

/** Optional: RAS, resampled to a spacing, HU window, z-score, then the same liver-centred cube. */
export interface ImprovedPresetConfig {
  preset: 'improved';
  /** mm per voxel along R, A, S. */
  targetSpacing: Shape3;
  /** HU clip range before z-scoring. */
  window: [number, number];
  cubeSize: number;
}

export type PreprocessConfig = SeedPresetConfig | ImprovedPresetConfig;

export type PreprocessConfigInput =
  | ({ preset?: 'seed' } & Partial<Omit<SeedPresetConfig, 'preset'>>)
  | ({ preset: 'improved' } & Partial<Omit<ImprovedPresetConfig, 'preset'>>);

export const SEED_PRESET: SeedPresetConfig = {
  preset: 'seed',
  targetSlices: 512,
  downscale: 2,
  cubeSize: 128,
};
export const IMPROVED_PRESET: ImprovedPresetConfig = {
  preset: 'improved',
  targetSpacing: [1.5, 1.5, 1.5],
  window: [-200, 250],
  cubeSize: 128,
};

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`preprocessing ${name} must be an integer ≥ 1, got ${value}`);
  return value;
}

function defined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Fills defaults (for absent or undefined fields) and checks every field; the cache key is made of the result. */
export function resolvePreprocessConfig(input: PreprocessConfigInput = {}): PreprocessConfig {
  if (input.preset === 'improved') {
    const c = { ...IMPROVED_PRESET, ...defined(input) };
    positiveInteger('cubeSize', c.cubeSize);
    if (c.targetSpacing.length !== 3 || c.targetSpacing.some((v) => !(v > 0) || !Number.isFinite(v)))
      throw new RangeError(
        `preprocessing targetSpacing must be 3 positive numbers, got ${JSON.stringify(c.targetSpacing)}`,
      );
    if (c.window.length !== 2 || !(c.window[0] < c.window[1]))
      throw new RangeError(
        `preprocessing window must be [low, high] with low < high, got ${JSON.stringify(c.window)}`,
      );
    return {
      preset: 'improved',
      targetSpacing: [...c.targetSpacing] as Shape3,
      window: [c.window[0], c.window[1]],
      cubeSize: c.cubeSize,
    };
  }
  if (input.preset !== undefined && input.preset !== 'seed')
    throw new RangeError(`unknown preprocessing preset '${String(input.preset)}' (seed or improved)`);
  const c = { ...SEED_PRESET, ...defined(input) };
  return {
    preset: 'seed',
    targetSlices: positiveInteger('targetSlices', c.targetSlices),
    downscale: positiveInteger('downscale', c.downscale),
    cubeSize: positiveInteger('cubeSize', c.cubeSize),
  };
}
