import type { NiftiData } from '../nifti/datatypes.js';

export type Shape3 = [number, number, number];

/**
 * A 3-D array in NIfTI order (x fastest): value(x, y, z) = data[x + nx·(y + ny·z)]. `scale` maps stored values to
 * real ones (slope·v + inter, rounded to float32 like the seed's `astype(float32)`); absent means stored = real.
 */
export interface Grid<T extends ArrayLike<number> = NiftiData> {
  data: T;
  shape: Shape3;
  scale?: { slope: number; inter: number } | null;
}

/**
 * Cube/model layout ("seed order"): numpy C order over the NIfTI axes, as the seed's saved arrays:
 * value(d, h, w) = data[(d·H + h)·W + w] with d = x, h = y, w = z.
 */
export function seedOrderIndex(shape: Shape3, d: number, h: number, w: number): number {
  return (d * shape[1] + h) * shape[2] + w;
}

export function voxelCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The 3-D shape of a volume whose extra dimensions are all 1, or null when it is not 3-D. */
export function shape3(shape: readonly number[]): Shape3 | null {
  if (shape.length < 3) return null;
  if (shape.slice(3).some((n) => n !== 1)) return null;
  return [shape[0]!, shape[1]!, shape[2]!];
}
