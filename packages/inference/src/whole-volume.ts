// The preprocessed grid prediction runs over. The seed preset forces z to `targetSlices` by padding or cropping the
// middle: right for cutting training cubes, wrong for prediction, where a centre crop leaves the slices outside it
// without a prediction (a 112-slice CT at 64 target slices lost slices 0–23 and 88–111). The sliding window already
// tiles any grid with overlap, so the grid keeps every slice instead: the forced count is raised to the volume's own.
import {
  prepareWholeVolume,
  shape3,
  LitsDataError,
  type NiftiVolume,
  type PreprocessConfig,
  type WholeVolumeResult,
} from '@lits-ddp/lits-data';
import { NonFiniteVoxelsError } from './errors.js';
import { countNonFinite, fillNonFinite, type NonFiniteFill } from './non-finite.js';

/**
 * The preprocessing to predict a volume of `slices` slices (NIfTI z) with: the training preprocessing, except that the
 * seed preset's forced slice count is never below the volume's own, so nothing is cropped. Volumes shorter than the
 * count are padded as in training (the model saw that padding); voxel spacing is unchanged either way, since the
 * seed preset pads or crops and never resamples z. The improved preset resamples the whole volume already.
 */
export function predictionPreprocessing(config: PreprocessConfig, slices: number): PreprocessConfig {
  if (config.preset !== 'seed' || slices <= config.targetSlices) return config;
  return { ...config, targetSlices: slices };
}

export interface PreparedVolume extends WholeVolumeResult {
  /** NaN / ±Inf voxels replaced by the volume minimum (with `nanFill`), or null. */
  nonFinite: NonFiniteFill | null;
}

/**
 * Checks the CT for NaN / ±Inf (refused, or filled with `nanFill`) and runs the training preprocessing without the
 * liver crop over every slice. Fills in place: an overlay drawn from `source` shows the filled voxels.
 */
export async function prepareForPrediction(
  source: NiftiVolume,
  preprocessing: PreprocessConfig,
  options: { nanFill?: boolean } = {},
): Promise<PreparedVolume> {
  const shape = shape3(source.shape);
  if (!shape)
    throw new LitsDataError(
      source.file,
      `${source.shape.length}-D image (shape ${source.shape.join('×')}); need a 3-D CT volume`,
    );
  let nonFinite: NonFiniteFill | null = null;
  if (options.nanFill) nonFinite = fillNonFinite(source);
  else {
    const count = countNonFinite(source.data);
    if (count.nan + count.infinite > 0)
      throw new NonFiniteVoxelsError(source.file, count.nan, count.infinite, count.total);
  }
  const whole = await prepareWholeVolume(source, predictionPreprocessing(preprocessing, shape[2]));
  return { ...whole, nonFinite };
}
