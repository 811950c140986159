import { LitsDataError } from '../errors.js';
import { multiply4, type Matrix4 } from '../nifti/affine.js';
import type { SliceCountPlan } from './blocks.js';
import { seedOrderIndex, voxelCount, type Shape3 } from './grid.js';

/** Output axis `a` samples source axis `sourceAxis` at source index = offset + scale · outputIndex (voxel centres). */
export interface AxisMap {
  sourceAxis: 0 | 1 | 2;
  scale: number;
  offset: number;
}

/** What preprocessing did to one volume: enough to map a prediction on the output grid back to the source grid. */
export interface PreprocessGeometry {
  preset: 'seed' | 'improved';
  sourceShape: Shape3;
  sourceAffine: Matrix4;
  sourceSpacing: Shape3;
  /** The grid the output lives on (seed order, see `Grid`): the cube, or the whole downscaled volume. */
  outputShape: Shape3;
  /** Voxel (d, h, w) of the output → world mm. */
  outputAffine: Matrix4;
  axes: [AxisMap, AxisMap, AxisMap];
  /** Seed preset: the z pad/crop to `target` slices. */
  sliceCount: SliceCountPlan | null;
  /** Seed preset: block-mean factor. */
  downscaleFactor: number | null;
  /** Improved preset: target spacing (mm) after reorientation to RAS. */
  targetSpacing: Shape3 | null;
  /** Shape of the whole grid before the cube crop (downscaled or resampled). */
  fullShape: Shape3;
  /** Cube start on that grid; null for a whole-volume result. */
  cropStart: Shape3 | null;
  /** Liver centre on that grid (null when not cropped). */
  centre: Shape3 | null;
}

/** Voxel → world for the output grid: source affine · (source index = offset + scale · output index). */
export function outputAffineOf(sourceAffine: Matrix4, axes: readonly AxisMap[]): Matrix4 {
  const m: Matrix4 = [
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 1],
  ];
  axes.forEach((map, a) => {
    m[map.sourceAxis]![a] = map.scale;
    m[map.sourceAxis]![3] = map.offset;
  });
  return multiply4(sourceAffine, m);
}

/** Shifts the axis maps by a crop start on the output grid. */
export function cropAxes(axes: readonly AxisMap[], start: Shape3): [AxisMap, AxisMap, AxisMap] {
  return axes.map((m, a) => ({ ...m, offset: m.offset + m.scale * start[a]! })) as [
    AxisMap,
    AxisMap,
    AxisMap,
  ];
}

/** What a preset knows before it picks its output grid. */
export type InputGeometry = Omit<
  PreprocessGeometry,
  'axes' | 'outputShape' | 'outputAffine' | 'cropStart' | 'centre'
>;

/** The geometry of an output grid: the whole grid on `axes`, or (with `crop`) the cube cropped from it at `crop.start`. */
export function outputGeometry(
  input: InputGeometry,
  axes: readonly AxisMap[],
  outputShape: Shape3,
  crop?: { start: Shape3; centre: Shape3 },
): PreprocessGeometry {
  const outputAxes = crop ? cropAxes(axes, crop.start) : ([...axes] as [AxisMap, AxisMap, AxisMap]);
  return {
    ...input,
    axes: outputAxes,
    outputShape,
    outputAffine: outputAffineOf(input.sourceAffine, outputAxes),
    cropStart: crop?.start ?? null,
    centre: crop?.centre ?? null,
  };
}

/**
 * Maps a label volume on the output grid (seed order) back to the source grid (NIfTI order) by nearest neighbour:
 * undoes the crop (outside → 0), the downscale or resampling, the reorientation and the z pad/crop.
 */
export function labelToSourceGrid(label: Uint8Array, geometry: PreprocessGeometry): Uint8Array {
  const shape = geometry.outputShape;
  if (label.length !== voxelCount(shape))
    throw new LitsDataError(
      'label',
      `has ${label.length} voxels; the output grid ${shape.join('×')} needs ${voxelCount(shape)}`,
    );
  const [nx, ny, nz] = geometry.sourceShape;
  const strides: Shape3 = [seedOrderIndex(shape, 1, 0, 0), seedOrderIndex(shape, 0, 1, 0), 1];
  // For each source axis, the offset its index contributes to the output index (−1: outside the output).
  const tables: Int32Array[] = [new Int32Array(nx), new Int32Array(ny), new Int32Array(nz)];
  geometry.axes.forEach((map, a) => {
    const table = tables[map.sourceAxis]!;
    for (let s = 0; s < table.length; s++) {
      const o = Math.round((s - map.offset) / map.scale);
      table[s] = o >= 0 && o < shape[a]! ? o * strides[a]! : -1;
    }
  });
  const [tx, ty, tz] = tables as [Int32Array, Int32Array, Int32Array];
  const out = new Uint8Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    const oz = tz[z]!;
    if (oz < 0) continue;
    for (let y = 0; y < ny; y++) {
      const oy = ty[y]!;
      if (oy < 0) continue;
      const base = nx * (y + ny * z);
      for (let x = 0; x < nx; x++) {
        const ox = tx[x]!;
        if (ox >= 0) out[base + x] = label[ox + oy + oz]!;
      }
    }
  }
  return out;
}
