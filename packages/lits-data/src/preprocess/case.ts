import { LitsDataError, NoLiverError } from '../errors.js';
import { readNifti, readNiftiHeader, readNiftiObserved, scalingOf, type NiftiVolume } from '../nifti/read.js';
import { checkImageValues, checkPairHeaders, mappedLabelGrid, type CaseOptions } from './checked-input.js';
import { realMin, StoredRange } from './downscale.js';
import type { NiftiHeaderInfo } from '../nifti/header.js';
import { resolvePreprocessConfig, type PreprocessConfig, type PreprocessConfigInput } from './config.js';
import { shape3, type Grid } from './grid.js';
import { improvedPresetCube, improvedPresetWhole } from './improved-preset.js';
import {
  seedImageStage,
  seedLabelStage,
  seedPresetCube,
  seedPresetWhole,
  type CubeResult,
  type WholeVolumeResult,
} from './seed-preset.js';

/** One training case: a CT volume and its mask. */
export interface CaseFiles {
  id: number;
  image: string;
  label: string;
}

/** A preprocessed case: image and label cubes in seed order, plus how they were made. */
export interface Cube extends CubeResult {
  caseId: number;
}

/** A volume as a 3-D grid for preprocessing; rejects 2-D and non-singleton 4-D+ images. */
function notThreeD(h: NiftiHeaderInfo): LitsDataError {
  return new LitsDataError(
    h.file,
    `${h.shape.length}-D image (shape ${h.shape.join('×')}); need a 3-D volume (a 4th dimension of 1 is fine)`,
  );
}

export function volumeGrid(volume: NiftiVolume): Grid {
  const shape = shape3(volume.shape);
  if (!shape) throw notThreeD(volume);
  if (volume.data.length !== shape[0] * shape[1] * shape[2])
    throw new LitsDataError(
      volume.file,
      `holds ${volume.data.length} voxels; shape ${shape.join('×')} needs more`,
    );
  return { data: volume.data, shape, scale: volume.dataIsScaled ? null : scalingOf(volume) };
}

/**
 * Checks the pair with the validation rules, then maps the mask to LiTS classes. `cubeConfig` null: a whole volume,
 * which needs neither the minimum size nor a liver to centre a cube on.
 */
function checkedPair(
  image: NiftiVolume,
  label: NiftiVolume,
  cubeConfig: PreprocessConfig | null,
  options: CaseOptions,
): { image: Grid; label: Grid<Uint8Array> } {
  checkPairHeaders(image, label, cubeConfig, options);
  const labelGrid = mappedLabelGrid(label, options.labelMap ?? null, cubeConfig !== null);
  checkImageValues(image);
  return { image: volumeGrid(image), label: labelGrid };
}

function config(input: PreprocessConfig | PreprocessConfigInput | undefined): PreprocessConfig {
  return resolvePreprocessConfig(input);
}

/**
 * Preprocesses volumes already in memory (read them with `{ native: true }` to save memory). Refuses what
 * `validateDataset` refuses (with `options`' label map and tolerance), naming the file.
 */
export function preprocessVolumes(
  image: NiftiVolume,
  label: NiftiVolume,
  input?: PreprocessConfig | PreprocessConfigInput,
  options: CaseOptions = {},
): CubeResult {
  const c = config(input);
  const grids = checkedPair(image, label, c, options);
  try {
    return c.preset === 'seed'
      ? seedPresetCube(grids.image, grids.label, image.affine, c)
      : improvedPresetCube(grids.image, grids.label, image.affine, c);
  } catch (error) {
    if (error instanceof NoLiverError) throw new LitsDataError(label.file, error.message, { cause: error });
    throw error;
  }
}

/**
 * Reads one case and runs the preset on it; the geometry comes from the image's header. For the seed preset the mask
 * is processed, and the image's minimum (the z pad value) tracked, while zlib still inflates the image off the main
 * thread. Refuses what `validateDataset` refuses (with `options`' label map and tolerance), naming the file.
 */
export async function preprocessCase(
  c: CaseFiles,
  input?: PreprocessConfig | PreprocessConfigInput,
  options: CaseOptions = {},
): Promise<Cube> {
  const resolved = config(input);
  if (resolved.preset !== 'seed') {
    const image = await readNifti(c.image, { native: true });
    const label = await readNifti(c.label, { native: true });
    return { ...preprocessVolumes(image, label, resolved, options), caseId: c.id };
  }
  const imageHeader = await readNiftiHeader(c.image);
  const range = new StoredRange((scalingOf(imageHeader)?.slope ?? 1) < 0);
  const pending = readNiftiObserved(c.image, { next: (values) => range.add(values) });
  pending.catch(() => undefined); // awaited below; this only stops an early label error leaving it unhandled
  const label = await readNifti(c.label, { native: true });
  checkPairHeaders(imageHeader, label, resolved, options);
  const labelGrid = mappedLabelGrid(label, options.labelMap ?? null);
  let stage;
  try {
    stage = seedLabelStage(labelGrid, resolved);
  } catch (error) {
    if (error instanceof NoLiverError) throw new LitsDataError(label.file, error.message, { cause: error });
    throw error;
  }
  const { volume: image, observedAll } = await pending;
  checkImageValues(image);
  const grid = volumeGrid(image);
  const knownMin = observedAll ? realMin(range.min, range.max, grid.scale) : undefined;
  return { ...seedImageStage(grid, image.affine, resolved, stage, knownMin), caseId: c.id };
}

/**
 * The preset without the liver crop (seed: z-force + downscale; improved: RAS + resample + window + z-score), for
 * sliding-window prediction; map predictions back with `labelToSourceGrid(prediction, result.geometry)`.
 */
export async function prepareWholeVolume(
  image: string | NiftiVolume,
  input?: PreprocessConfig | PreprocessConfigInput,
  label?: string | NiftiVolume,
  options: CaseOptions = {},
): Promise<WholeVolumeResult> {
  const c = config(input);
  const imageVolume = typeof image === 'string' ? await readNifti(image, { native: true }) : image;
  const labelVolume = typeof label === 'string' ? await readNifti(label, { native: true }) : (label ?? null);
  const grids = labelVolume
    ? checkedPair(imageVolume, labelVolume, null, options)
    : { image: volumeGrid(imageVolume), label: null };
  return c.preset === 'seed'
    ? seedPresetWhole(grids.image, grids.label, imageVolume.affine, c)
    : improvedPresetWhole(grids.image, grids.label, imageVolume.affine, c);
}
