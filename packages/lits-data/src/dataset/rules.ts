// The rules a case must pass before it may become a cube, in one place: `validateDataset` collects every problem they
// find in a data set, and preprocessing applies the same functions to the case it reads and throws the first, so
// `lits data validate`, `lits data preprocess` and `lits train` refuse exactly the same inputs.
import { basename } from 'node:path';
import type { DatatypeName } from '../nifti/datatypes.js';
import type { NiftiHeaderInfo } from '../nifti/header.js';
import { scalingOf, type NiftiVolume } from '../nifti/read.js';
import { planSliceCount } from '../preprocess/blocks.js';
import type { PreprocessConfig } from '../preprocess/config.js';
import { shape3, type Shape3 } from '../preprocess/grid.js';
import { describeForeignLabels, type LabelClassCounts, type LabelMap } from './label-map.js';

/**
 * Bump when a rule changes what passes: cube cache keys include it, so no cube made under older, looser rules is
 * reused. 1: before the rules were shared (preprocessing clipped foreign labels); 2: label maps, no foreign or
 * non-integer labels, finite CT values, a minimum size and a liver in every mask.
 */
export const VALIDATION_RULES_VERSION = 2;

/** Largest allowed difference between image and mask affine entries, in mm. */
export const DEFAULT_GEOMETRY_TOLERANCE = 1e-3;

/** A 3-D volume, or a trailing dimension of 1; the reason otherwise. */
export function dimensionProblem(h: Pick<NiftiHeaderInfo, 'shape'>): string | null {
  if (shape3(h.shape)) return null;
  return `${h.shape.length}-D image (shape ${h.shape.join('×')}); need a 3-D volume (a 4th dimension of 1 is fine)`;
}

/** Whether the seed preset's block mean keeps at least one block made only of source slices (none padded). */
function wholeBlockSurvives(slices: number, target: number, factor: number): boolean {
  const plan = planSliceCount(slices, target);
  const first = plan.padBefore;
  const end = plan.target - plan.padAfter;
  const block = Math.ceil(first / factor) * factor;
  return block + factor <= end;
}

/**
 * The smallest volume the preprocessing can use. Every preset needs 2 voxels per axis (one slice is an image, not a
 * volume). The seed preset also needs a whole `downscale`-sized block of source voxels on each axis after z is padded
 * to `targetSlices`: a mask block half made of padding has half the mean, and `np.round` turns liver (1 → 0.5) into
 * background, which is how a 64×64×1 case lost its liver.
 */
export function minimumVolumeShape(config: PreprocessConfig): Shape3 {
  if (config.preset !== 'seed') return [2, 2, 2];
  const f = config.downscale;
  let slices = 2 * f - 1; // every count from here up holds a whole block, whatever the padding
  while (slices > 1 && wholeBlockSurvives(slices - 1, config.targetSlices, f)) slices--;
  return [Math.max(2, f), Math.max(2, f), Math.max(2, slices)];
}

function describePreset(config: PreprocessConfig): string {
  return config.preset === 'seed'
    ? `the seed preprocessing (downscale ${config.downscale}, ${config.targetSlices} slices)`
    : `the improved preprocessing`;
}

/** The volume is smaller than `minimumVolumeShape(config)` along some axis; the reason names the minimum. */
export function sizeProblem(shape: Shape3, config: PreprocessConfig): string | null {
  const min = minimumVolumeShape(config);
  if (shape.every((n, a) => n >= min[a]!)) return null;
  const why =
    config.preset === 'seed' && config.downscale > 1
      ? `a thinner volume loses its labels in the ${config.downscale}× block mean`
      : 'a single slice is not a volume';
  return `shape ${shape.join('×')} is too small for ${describePreset(config)}: need at least ${min.join('×')} voxels (${why})`;
}

function maxAffineDifference(a: number[][], b: number[][]): number {
  let max = 0;
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++) max = Math.max(max, Math.abs(a[r]![c]! - b[r]![c]!));
  return max;
}

/** Mask and image on the same grid: same shape, affines within `tolerance` mm. The reason is about the mask file. */
export function geometryProblem(
  image: Pick<NiftiHeaderInfo, 'file' | 'shape' | 'affine'>,
  label: Pick<NiftiHeaderInfo, 'shape' | 'affine'>,
  tolerance: number = DEFAULT_GEOMETRY_TOLERANCE,
): string | null {
  const a = shape3(image.shape);
  const b = shape3(label.shape);
  if (!a || !b) return null; // dimensionProblem names these
  if (a.some((n, i) => n !== b[i]))
    return `shape ${b.join('×')} differs from ${basename(image.file)} (${a.join('×')})`;
  const diff = maxAffineDifference(image.affine, label.affine);
  if (diff > tolerance)
    return `geometry differs from ${basename(image.file)}: affines differ by up to ${diff.toPrecision(3)} mm (tolerance ${tolerance})`;
  return null;
}

/** A mask's values after the label map: nothing foreign, and some liver or tumour to centre the cube on. */
export function labelProblem(classes: LabelClassCounts, map: LabelMap | null): string | null {
  if (classes.foreign.length > 0) return describeForeignLabels(classes.foreign);
  if (classes.counts[1] + classes.counts[2] === 0)
    return `no liver: no voxel has class 1 (liver) or 2 (tumour)${map ? ` under the label map ${map.text}` : ''}, so there is no cube to centre`;
  return null;
}

const INTEGER_RANGES: Partial<Record<DatatypeName, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

/**
 * Whether a volume may hold a value that is not a finite float32 once scaled (preprocessing works in float32, as the
 * seed's `astype(float32)`): float data always may; integer data only when scl_slope/scl_inter can push its stored
 * range out of float32's, which the header alone answers.
 */
export function mayHoldNonFinite(h: Pick<NiftiHeaderInfo, 'datatype' | 'sclSlope' | 'sclInter'>): boolean {
  const range = INTEGER_RANGES[h.datatype.name];
  if (!range) return true;
  const scale = scalingOf(h);
  if (!scale) return false;
  return range.some((stored) => !Number.isFinite(Math.fround(stored * scale.slope + scale.inter)));
}

/** NaN and infinite voxels (after scaling, in float32) of an image; null when every value is a finite number. */
export function imageValueProblem(volume: NiftiVolume): string | null {
  const scale = volume.dataIsScaled ? null : scalingOf(volume);
  const isFloatData = volume.data instanceof Float32Array || volume.data instanceof Float64Array;
  if (!isFloatData && !(scale && mayHoldNonFinite(volume))) return null;
  const slope = scale?.slope ?? 1;
  const inter = scale?.inter ?? 0;
  const data = volume.data;
  let nan = 0;
  let infinite = 0;
  for (let i = 0; i < data.length; i++) {
    const v = scale ? Math.fround(data[i]! * slope + inter) : Math.fround(data[i]!);
    if (v - v !== 0) {
      if (Number.isNaN(v)) nan++;
      else infinite++;
    }
  }
  if (nan + infinite === 0) return null;
  const parts = [
    ...(nan > 0 ? [`${nan} NaN voxel${nan === 1 ? '' : 's'}`] : []),
    ...(infinite > 0 ? [`${infinite} infinite voxel${infinite === 1 ? '' : 's'}`] : []),
  ];
  const scaled = scale ? ` after scaling (scl_slope ${slope}, scl_inter ${inter})` : '';
  return `${parts.join(' and ')}${scaled}`;
}
