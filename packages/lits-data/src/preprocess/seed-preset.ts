import { centreOfBounds, cropCube, cubeCropStart, planSliceCount, toSeedOrder } from './blocks.js';
import { downscaleLabel, downscaleMean, downscaledShape, minValue } from './downscale.js';
import type { SeedPresetConfig } from './config.js';
import { outputGeometry, type AxisMap, type PreprocessGeometry } from './geometry.js';
import type { Grid, Shape3 } from './grid.js';
import type { Matrix4 } from '../nifti/affine.js';
import { voxelSizes } from '../nifti/affine.js';
import { NoLiverError } from '../errors.js';

export interface CubeResult {
  image: Float32Array;
  label: Uint8Array;
  shape: Shape3;
  geometry: PreprocessGeometry;
}

export interface WholeVolumeResult {
  /** Seed order over `shape`. */
  image: Float32Array;
  label: Uint8Array | null;
  shape: Shape3;
  geometry: PreprocessGeometry;
}

function baseGeometry(
  image: Grid,
  affine: Matrix4,
  config: SeedPresetConfig,
): {
  geometry: Omit<PreprocessGeometry, 'outputShape' | 'outputAffine' | 'cropStart' | 'centre'>;
  plan: ReturnType<typeof planSliceCount>;
} {
  const plan = planSliceCount(image.shape[2], config.targetSlices);
  const f = config.downscale;
  const axes = [0, 1, 2].map((a) => ({
    sourceAxis: a,
    scale: f,
    offset: (f - 1) / 2 + (a === 2 ? plan.cropBefore - plan.padBefore : 0),
  })) as [AxisMap, AxisMap, AxisMap];
  return {
    plan,
    geometry: {
      preset: 'seed',
      sourceShape: image.shape,
      sourceAffine: affine,
      sourceSpacing: voxelSizes(affine),
      axes,
      sliceCount: plan,
      downscaleFactor: f,
      targetSpacing: null,
      fullShape: downscaledShape(image.shape, f, plan),
    },
  };
}

/** The label half of the seed preset: where the cube goes. Needs only the label, so it can run while the image loads. */
export interface SeedLabelStage {
  labelCube: Uint8Array;
  centre: Shape3;
  start: Shape3;
  size: Shape3;
}

export function seedLabelStage(label: Grid, config: SeedPresetConfig): SeedLabelStage {
  const plan = planSliceCount(label.shape[2], config.targetSlices);
  const labelDown = downscaleLabel(label, config.downscale, { slicePlan: plan });
  const centre = labelDown.bounds ? centreOfBounds(labelDown.bounds) : null;
  if (!centre)
    throw new NoLiverError('no voxel has label ≥ 1 after downscaling, so there is no liver to centre on');
  const size: Shape3 = [config.cubeSize, config.cubeSize, config.cubeSize];
  const start = cubeCropStart(centre, size);
  return { labelCube: cropCube(labelDown, start, size, (n) => new Uint8Array(n)), centre, start, size };
}

/** The image half: the block means of the cube's region only, then the cube. `knownMin`: the image minimum if known. */
export function seedImageStage(
  image: Grid,
  affine: Matrix4,
  config: SeedPresetConfig,
  stage: SeedLabelStage,
  knownMin?: number,
): CubeResult {
  const { geometry, plan } = baseGeometry(image, affine, config);
  const { start, size, centre } = stage;
  const padded = plan.padBefore + plan.padAfter > 0;
  const region = downscaleMean(image, config.downscale, {
    slicePlan: plan,
    padValue: padded ? (knownMin ?? minValue(image)) : 0,
    region: { start, size },
  });
  return {
    image: cropCube(region, [0, 0, 0], size, (n) => new Float32Array(n)),
    label: stage.labelCube,
    shape: size,
    geometry: outputGeometry(geometry, geometry.axes, size, { start, centre }),
  };
}

/** The seed preset on one case: a cube of `cubeSize`³ centred on the liver (raw HU float32 + uint8 label). */
export function seedPresetCube(
  image: Grid,
  label: Grid,
  affine: Matrix4,
  config: SeedPresetConfig,
): CubeResult {
  return seedImageStage(image, affine, config, seedLabelStage(label, config));
}

/** The seed preset without the liver crop: z forced and downscaled, for sliding-window prediction. */
export function seedPresetWhole(
  image: Grid,
  label: Grid | null,
  affine: Matrix4,
  config: SeedPresetConfig,
): WholeVolumeResult {
  const { geometry, plan } = baseGeometry(image, affine, config);
  const f = config.downscale;
  const padded = plan.padBefore + plan.padAfter > 0;
  const down = downscaleMean(image, f, { slicePlan: plan, padValue: padded ? minValue(image) : 0 });
  const labelDown = label ? downscaleLabel(label, f, { slicePlan: plan }) : null;
  return {
    image: toSeedOrder(down, (n) => new Float32Array(n)),
    label: labelDown ? toSeedOrder(labelDown, (n) => new Uint8Array(n)) : null,
    shape: down.shape,
    geometry: outputGeometry(geometry, geometry.axes, down.shape),
  };
}
