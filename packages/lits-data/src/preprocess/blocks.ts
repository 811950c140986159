/**
 * The seed's preprocessing steps (shared/research/seed.md §2.1) as separate, composable pieces. The z padding/cropping
 * is applied virtually inside the downscale, so a 512×512×200 volume is never materialised at 512 slices.
 */
import type { Grid, Shape3 } from './grid.js';

/** How the slice axis is forced to `target`: symmetric pad (odd slice after) or centre crop (odd slice after). */
export interface SliceCountPlan {
  target: number;
  padBefore: number;
  padAfter: number;
  cropBefore: number;
  cropAfter: number;
}

export function planSliceCount(slices: number, target: number): SliceCountPlan {
  if (!Number.isInteger(target) || target < 1)
    throw new RangeError(`target slice count must be ≥ 1, got ${target}`);
  if (slices <= target) {
    const padBefore = Math.floor((target - slices) / 2);
    return { target, padBefore, padAfter: target - slices - padBefore, cropBefore: 0, cropAfter: 0 };
  }
  const cropBefore = Math.floor((slices - target) / 2);
  return { target, padBefore: 0, padAfter: 0, cropBefore, cropAfter: slices - target - cropBefore };
}

/** The source slice behind forced slice `z`, or -1 for a padded slice. */
export function sourceSlice(plan: SliceCountPlan, z: number): number {
  if (z < plan.padBefore || z >= plan.target - plan.padAfter) return -1;
  return z - plan.padBefore + plan.cropBefore;
}

/** Materialises the slice-count step (for small volumes and tests; the presets do it virtually). */
export function forceSliceCount(grid: Grid, target: number, fill: number): Grid<Float32Array> {
  const [nx, ny, nz] = grid.shape;
  const plan = planSliceCount(nz, target);
  const out = new Float32Array(nx * ny * target);
  const plane = nx * ny;
  for (let z = 0; z < target; z++) {
    const s = sourceSlice(plan, z);
    if (s < 0) out.fill(fill, z * plane, (z + 1) * plane);
    else for (let i = 0; i < plane; i++) out[z * plane + i] = realValue(grid, s * plane + i);
  }
  return { data: out, shape: [nx, ny, target] };
}

export function realValue(grid: Grid, index: number): number {
  const v = grid.data[index] as number;
  return grid.scale ? Math.fround(v * grid.scale.slope + grid.scale.inter) : v;
}

/** numpy's `np.round`: to nearest, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/**
 * Per axis, floor(first + (last − first) / 2) over the slices that hold a label ≥ 1; null when there is none.
 */
export function liverCentre(label: Grid<Uint8Array>): Shape3 | null {
  const [nx, ny, nz] = label.shape;
  const lo: Shape3 = [Infinity, Infinity, Infinity];
  const hi: Shape3 = [-1, -1, -1];
  const data = label.data;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      const base = nx * (y + ny * z);
      let first = -1;
      let last = -1;
      for (let x = 0; x < nx; x++) {
        if (data[base + x]! >= 1) {
          if (first < 0) first = x;
          last = x;
        }
      }
      if (first < 0) continue;
      if (first < lo[0]) lo[0] = first;
      if (last > hi[0]) hi[0] = last;
      if (y < lo[1]) lo[1] = y;
      if (y > hi[1]) hi[1] = y;
      if (z < lo[2]) lo[2] = z;
      if (z > hi[2]) hi[2] = z;
    }
  }
  return hi[0] < 0 ? null : centreOfBounds({ lo, hi });
}

/** floor(first + (last − first) / 2) per axis of an inclusive box. */
export function centreOfBounds(bounds: { lo: Shape3; hi: Shape3 }): Shape3 {
  return [0, 1, 2].map((a) => Math.floor(bounds.lo[a]! + (bounds.hi[a]! - bounds.lo[a]!) / 2)) as Shape3;
}

/**
 * Start of the cube around `centre`: centre − ⌊size/2⌋, clamped to ≥ 0. The seed used the unclamped value, and a
 * negative start made numpy slice from the end (an empty or wrong cube); the end is left as the seed has it, so a
 * cube that runs past the volume is zero-padded at the end.
 */
export function cubeCropStart(centre: Shape3, size: Shape3): Shape3 {
  return [0, 1, 2].map((a) => Math.max(0, centre[a]! - Math.floor(size[a]! / 2))) as Shape3;
}

/** Copies the box [start, start + size) of a NIfTI-order grid into a seed-order cube, zero where it runs past the end. */
export function cropCube<T extends Float32Array | Uint8Array>(
  grid: Grid<T>,
  start: Shape3,
  size: Shape3,
  create: (length: number) => T,
): T {
  const [nx, ny, nz] = grid.shape;
  const out = create(size[0] * size[1] * size[2]);
  const xEnd = Math.max(0, Math.min(nx - start[0], size[0]));
  const yEnd = Math.max(0, Math.min(ny - start[1], size[1]));
  const zEnd = Math.max(0, Math.min(nz - start[2], size[2]));
  const data = grid.data;
  const [, sh, sw] = size;
  const dStride = sh * sw;
  // Tiles of TILE×TILE over (x, z) keep both the strided reads and the strided writes in cache.
  for (let h = 0; h < yEnd; h++) {
    for (let w0 = 0; w0 < zEnd; w0 += TILE) {
      const w1 = Math.min(zEnd, w0 + TILE);
      for (let d0 = 0; d0 < xEnd; d0 += TILE) {
        const d1 = Math.min(xEnd, d0 + TILE);
        for (let w = w0; w < w1; w++) {
          const src = start[0] + nx * (start[1] + h + ny * (start[2] + w));
          const dst = h * sw + w;
          for (let d = d0; d < d1; d++) out[dst + d * dStride] = data[src + d]!;
        }
      }
    }
  }
  return out;
}

const TILE = 16;

/** The whole grid in seed order. */
export function toSeedOrder<T extends Float32Array | Uint8Array>(
  grid: Grid<T>,
  create: (length: number) => T,
): T {
  return cropCube(grid, [0, 0, 0], grid.shape, create);
}
