import { axisDirections, voxelSizes, type Matrix4 } from '../nifti/affine.js';
import { cropCube, cubeCropStart, liverCentre, toSeedOrder } from './blocks.js';
import type { ImprovedPresetConfig } from './config.js';
import { outputGeometry, type AxisMap, type InputGeometry } from './geometry.js';
import type { Grid, Shape3 } from './grid.js';
import { NoLiverError } from '../errors.js';
import type { CubeResult, WholeVolumeResult } from './seed-preset.js';

/**
 * Output axis a runs along world axis a (R, A, S) at the target spacing; each maps to the source axis that points
 * that way, flipped where it points the other way, with the sampled grid centred on the source field of view.
 */
export function rasResamplePlan(
  shape: Shape3,
  affine: Matrix4,
  spacing: Shape3,
): { axes: [AxisMap, AxisMap, AxisMap]; shape: Shape3 } {
  const dirs = axisDirections(affine);
  const sizes = voxelSizes(affine);
  const out: Shape3 = [0, 0, 0];
  const axes = [0, 1, 2].map((a) => {
    const j = dirs.findIndex((d) => d.worldAxis === a);
    const n = shape[j]!;
    const step = spacing[a]! / sizes[j]!;
    const m = Math.max(1, Math.round((n * sizes[j]!) / spacing[a]!));
    out[a] = m;
    const first = (n - 1 - (m - 1) * step) / 2;
    return dirs[j]!.sign > 0
      ? { sourceAxis: j, scale: step, offset: first }
      : { sourceAxis: j, scale: -step, offset: n - 1 - first };
  }) as [AxisMap, AxisMap, AxisMap];
  return { axes, shape: out };
}

interface AxisSamples {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
  nearest: Int32Array;
}

function axisSamples(map: AxisMap, size: number, sourceShape: Shape3): AxisSamples {
  const n = sourceShape[map.sourceAxis];
  const stride =
    map.sourceAxis === 0 ? 1 : map.sourceAxis === 1 ? sourceShape[0] : sourceShape[0] * sourceShape[1];
  const s: AxisSamples = {
    lo: new Int32Array(size),
    hi: new Int32Array(size),
    frac: new Float64Array(size),
    nearest: new Int32Array(size),
  };
  for (let o = 0; o < size; o++) {
    const x = Math.min(n - 1, Math.max(0, map.offset + map.scale * o));
    const lo = Math.floor(x);
    s.lo[o] = lo * stride;
    s.hi[o] = Math.min(n - 1, lo + 1) * stride;
    s.frac[o] = x - lo;
    s.nearest[o] = Math.min(n - 1, Math.round(x)) * stride;
  }
  return s;
}

/** Trilinear resampling (edge-clamped) onto the grid the axis maps describe; NIfTI order over the output axes. */
export function resampleLinear(grid: Grid, axes: readonly AxisMap[], shape: Shape3): Grid<Float32Array> {
  const [sx, sy, sz] = axes.map((m, a) => axisSamples(m, shape[a]!, grid.shape)) as [
    AxisSamples,
    AxisSamples,
    AxisSamples,
  ];
  const out = new Float32Array(shape[0] * shape[1] * shape[2]);
  const d = grid.data;
  const slope = grid.scale?.slope ?? 1;
  const inter = grid.scale?.inter ?? 0;
  let index = 0;
  for (let k = 0; k < shape[2]; k++) {
    const z0 = sz.lo[k]!;
    const z1 = sz.hi[k]!;
    const fz = sz.frac[k]!;
    for (let j = 0; j < shape[1]; j++) {
      const y0 = sy.lo[j]!;
      const y1 = sy.hi[j]!;
      const fy = sy.frac[j]!;
      for (let i = 0; i < shape[0]; i++) {
        const x0 = sx.lo[i]!;
        const x1 = sx.hi[i]!;
        const fx = sx.frac[i]!;
        const lerp = (y: number, z: number): number => {
          const a = d[x0 + y + z] as number;
          return a + ((d[x1 + y + z] as number) - a) * fx;
        };
        const c0 = lerp(y0, z0) * (1 - fy) + lerp(y1, z0) * fy;
        const c1 = lerp(y0, z1) * (1 - fy) + lerp(y1, z1) * fy;
        out[index++] = (c0 * (1 - fz) + c1 * fz) * slope + inter;
      }
    }
  }
  return { data: out, shape };
}

/** Nearest-neighbour resampling of a label, rounded half to even and clipped to [0, 2]. */
export function resampleLabel(grid: Grid, axes: readonly AxisMap[], shape: Shape3): Grid<Uint8Array> {
  const [sx, sy, sz] = axes.map((m, a) => axisSamples(m, shape[a]!, grid.shape)) as [
    AxisSamples,
    AxisSamples,
    AxisSamples,
  ];
  const out = new Uint8Array(shape[0] * shape[1] * shape[2]);
  const slope = grid.scale?.slope ?? 1;
  const inter = grid.scale?.inter ?? 0;
  let index = 0;
  for (let k = 0; k < shape[2]; k++)
    for (let j = 0; j < shape[1]; j++)
      for (let i = 0; i < shape[0]; i++) {
        const v = Math.round(
          (grid.data[sx.nearest[i]! + sy.nearest[j]! + sz.nearest[k]!] as number) * slope + inter,
        );
        out[index++] = v < 0 ? 0 : v > 2 ? 2 : v;
      }
  return { data: out, shape };
}

/** Clips to the window, then z-scores with the mean and standard deviation of the whole clipped volume. */
export function windowAndStandardise(image: Float32Array, window: [number, number]): void {
  const [lo, hi] = window;
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < image.length; i++) {
    const v = image[i]! < lo ? lo : image[i]! > hi ? hi : image[i]!;
    image[i] = v;
    sum += v;
    sumSq += v * v;
  }
  const mean = sum / image.length;
  const std = Math.sqrt(Math.max(0, sumSq / image.length - mean * mean)) || 1;
  for (let i = 0; i < image.length; i++) image[i] = (image[i]! - mean) / std;
}

function prepare(image: Grid, affine: Matrix4, config: ImprovedPresetConfig) {
  const plan = rasResamplePlan(image.shape, affine, config.targetSpacing);
  const resampled = resampleLinear(image, plan.axes, plan.shape);
  windowAndStandardise(resampled.data, config.window);
  const geometry: InputGeometry = {
    preset: 'improved',
    sourceShape: image.shape,
    sourceAffine: affine,
    sourceSpacing: voxelSizes(affine),
    sliceCount: null,
    downscaleFactor: null,
    targetSpacing: config.targetSpacing,
    fullShape: plan.shape,
  };
  return { plan, resampled, geometry };
}

export function improvedPresetCube(
  image: Grid,
  label: Grid,
  affine: Matrix4,
  config: ImprovedPresetConfig,
): CubeResult {
  const { plan, resampled, geometry } = prepare(image, affine, config);
  const labels = resampleLabel(label, plan.axes, plan.shape);
  const centre = liverCentre(labels);
  if (!centre)
    throw new NoLiverError('no voxel has label ≥ 1 after resampling, so there is no liver to centre on');
  const size: Shape3 = [config.cubeSize, config.cubeSize, config.cubeSize];
  const start = cubeCropStart(centre, size);
  return {
    image: cropCube(resampled, start, size, (n) => new Float32Array(n)),
    label: cropCube(labels, start, size, (n) => new Uint8Array(n)),
    shape: size,
    geometry: outputGeometry(geometry, plan.axes, size, { start, centre }),
  };
}

export function improvedPresetWhole(
  image: Grid,
  label: Grid | null,
  affine: Matrix4,
  config: ImprovedPresetConfig,
): WholeVolumeResult {
  const { plan, resampled, geometry } = prepare(image, affine, config);
  const labels = label ? resampleLabel(label, plan.axes, plan.shape) : null;
  return {
    image: toSeedOrder(resampled, (n) => new Float32Array(n)),
    label: labels ? toSeedOrder(labels, (n) => new Uint8Array(n)) : null,
    shape: plan.shape,
    geometry: outputGeometry(geometry, plan.axes, plan.shape),
  };
}
