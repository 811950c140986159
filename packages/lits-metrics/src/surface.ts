// Surface distances between two label regions in mm, as the LiTS evaluation defines them: surface voxels are the
// region minus its binary erosion (outside the volume counts as background), and each surface voxel's distance is
// the Euclidean distance between voxel centres to the nearest surface voxel of the other region.
import { squaredDistanceTransform, type Shape3 } from './distance-transform.js';

/** Neighbourhood that decides whether a region voxel lies on the surface: faces (6), + edges (18), + corners (26). */
export type Connectivity = 6 | 18 | 26;

/** A region of a label volume: the voxels whose label lies in [lo, hi]. */
export interface LabelRange {
  readonly lo: number;
  readonly hi: number;
}

/** Axis-aligned box of voxels: `start` and `size` per axis (x, y, z). */
export interface Box {
  readonly start: Shape3;
  readonly size: Shape3;
}

/** The smallest box holding every voxel of the region, or null when the region is empty. */
export function regionBox(labels: Uint8Array, shape: Shape3, range: LabelRange): Box | null {
  const [nx, ny, nz] = shape;
  const { lo, hi } = range;
  let x0 = nx;
  let x1 = -1;
  let y0 = ny;
  let y1 = -1;
  let z0 = nz;
  let z1 = -1;
  for (let z = 0, i = 0; z < nz; z++)
    for (let y = 0; y < ny; y++) {
      let rowHit = false;
      for (let x = 0; x < nx; x++, i++) {
        const v = labels[i]!;
        if (v < lo || v > hi) continue;
        rowHit = true;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      }
      if (!rowHit) continue;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (z < z0) z0 = z;
      z1 = z;
    }
  if (x1 < 0) return null;
  return { start: [x0, y0, z0], size: [x1 - x0 + 1, y1 - y0 + 1, z1 - z0 + 1] };
}

export function unionBox(a: Box, b: Box): Box {
  const start = [0, 1, 2].map((k) => Math.min(a.start[k]!, b.start[k]!)) as unknown as Shape3;
  const end = [0, 1, 2].map((k) => Math.max(a.start[k]! + a.size[k]!, b.start[k]! + b.size[k]!));
  return { start, size: [end[0]! - start[0], end[1]! - start[1], end[2]! - start[2]] };
}

/** 1 where the voxel of `box` belongs to the region (box-local NIfTI order). */
export function regionInBox(labels: Uint8Array, shape: Shape3, range: LabelRange, box: Box): Uint8Array {
  const [nx, ny] = shape;
  const [bx, by, bz] = box.size;
  const [sx, sy, sz] = box.start;
  const out = new Uint8Array(bx * by * bz);
  const { lo, hi } = range;
  for (let z = 0, o = 0; z < bz; z++)
    for (let y = 0; y < by; y++) {
      const base = sx + nx * (sy + y + ny * (sz + z));
      for (let x = 0; x < bx; x++, o++) {
        const v = labels[base + x]!;
        out[o] = v >= lo && v <= hi ? 1 : 0;
      }
    }
  return out;
}

function neighbourOffsets(connectivity: Connectivity): Array<[number, number, number]> {
  const offsets: Array<[number, number, number]> = [];
  for (let dz = -1; dz <= 1; dz++)
    for (let dy = -1; dy <= 1; dy++)
      for (let dx = -1; dx <= 1; dx++) {
        const order = Math.abs(dx) + Math.abs(dy) + Math.abs(dz);
        if (order === 0) continue;
        if (connectivity === 6 && order > 1) continue;
        if (connectivity === 18 && order > 2) continue;
        offsets.push([dx, dy, dz]);
      }
  return offsets;
}

/** Region voxels with at least one neighbour (of the given connectivity) outside the region or outside the grid. */
export function surfaceOf(inside: Uint8Array, shape: Shape3, connectivity: Connectivity): Uint8Array {
  const [nx, ny, nz] = shape;
  const offsets = neighbourOffsets(connectivity);
  const out = new Uint8Array(inside.length);
  for (let z = 0, i = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, i++) {
        if (!inside[i]) continue;
        for (const [dx, dy, dz] of offsets) {
          const X = x + dx;
          const Y = y + dy;
          const Z = z + dz;
          if (X < 0 || Y < 0 || Z < 0 || X >= nx || Y >= ny || Z >= nz || !inside[X + nx * (Y + ny * Z)]) {
            out[i] = 1;
            break;
          }
        }
      }
  return out;
}

/** Distances (mm) from every surface voxel of A to the nearest surface voxel of B, and from B's to A's. */
export interface DirectedSurfaceDistances {
  aToB: Float64Array;
  bToA: Float64Array;
}

/** `insideA`/`insideB`: region masks on one grid (NIfTI order); both must be non-empty. */
export function directedSurfaceDistances(
  insideA: Uint8Array,
  insideB: Uint8Array,
  shape: Shape3,
  spacing: Shape3,
  connectivity: Connectivity,
): DirectedSurfaceDistances {
  const surfaceA = surfaceOf(insideA, shape, connectivity);
  const surfaceB = surfaceOf(insideB, shape, connectivity);
  const sample = (from: Uint8Array, to: Uint8Array): Float64Array => {
    const d2 = squaredDistanceTransform(to, shape, spacing);
    let n = 0;
    for (let i = 0; i < from.length; i++) n += from[i]!;
    const out = new Float64Array(n);
    for (let i = 0, k = 0; i < from.length; i++) if (from[i]) out[k++] = Math.sqrt(d2[i]!);
    return out;
  };
  const aToB = sample(surfaceA, surfaceB);
  const bToA = sample(surfaceB, surfaceA);
  if (aToB.length === 0 || bToA.length === 0)
    throw new RangeError('surface distances need two non-empty regions');
  return { aToB, bToA };
}

export interface SurfaceDistanceOptions {
  /** Surface neighbourhood for ASSD; the LiTS code (medpy `Surface`) uses 18. */
  assdConnectivity?: Connectivity;
  /** Surface neighbourhood for MSSD; the LiTS code (medpy `hd`, connectivity 1) uses 6. */
  mssdConnectivity?: Connectivity;
}

/** Average and maximum symmetric surface distance (mm). */
export interface SurfaceDistances {
  assd: number;
  mssd: number;
}

/**
 * ASSD = (Σ_{a∈S(A)} d(a, S(B)) + Σ_{b∈S(B)} d(b, S(A))) / (|S(A)| + |S(B)|); MSSD (Hausdorff) = the largest of those
 * distances. Works inside the box around both regions, so memory follows the regions' size, not the volume's.
 * Returns null when either region is empty (the caller's empty-region rule decides the value).
 */
export function surfaceDistances(
  pred: Uint8Array,
  truth: Uint8Array,
  shape: Shape3,
  spacing: Shape3,
  range: LabelRange,
  options: SurfaceDistanceOptions = {},
): SurfaceDistances | null {
  const boxP = regionBox(pred, shape, range);
  const boxT = regionBox(truth, shape, range);
  if (!boxP || !boxT) return null;
  const box = unionBox(boxP, boxT);
  const insideP = regionInBox(pred, shape, range, box);
  const insideT = regionInBox(truth, shape, range, box);
  const assdC = options.assdConnectivity ?? 18;
  const mssdC = options.mssdConnectivity ?? 6;
  const forAssd = directedSurfaceDistances(insideP, insideT, box.size, spacing, assdC);
  const forMssd =
    mssdC === assdC ? forAssd : directedSurfaceDistances(insideP, insideT, box.size, spacing, mssdC);
  let sum = 0;
  for (const d of forAssd.aToB) sum += d;
  for (const d of forAssd.bToA) sum += d;
  let max = 0;
  for (const d of forMssd.aToB) if (d > max) max = d;
  for (const d of forMssd.bToA) if (d > max) max = d;
  return { assd: sum / (forAssd.aToB.length + forAssd.bToA.length), mssd: max };
}
