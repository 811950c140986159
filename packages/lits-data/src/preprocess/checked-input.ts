// The validation rules (dataset/rules.ts) applied to the one case preprocessing is reading: the first problem throws,
// naming the file, so a cube is never made from input `validateDataset` would refuse, even when a caller skipped it.
import { LitsDataError } from '../errors.js';
import type { NiftiHeaderInfo } from '../nifti/header.js';
import { scalingOf, type NiftiVolume } from '../nifti/read.js';
import {
  applyLabelMap,
  countLabelClasses,
  type LabelClassCounts,
  type LabelMap,
} from '../dataset/label-map.js';
import {
  DEFAULT_GEOMETRY_TOLERANCE,
  dimensionProblem,
  geometryProblem,
  imageValueProblem,
  labelProblem,
  sizeProblem,
} from '../dataset/rules.js';
import type { PreprocessConfig } from './config.js';
import { shape3, voxelCount, type Grid } from './grid.js';

/** How preprocessing reads a case's mask and checks the pair; the defaults are those of `validateDataset`. */
export interface CaseOptions {
  /** What the mask values mean (default: none, so masks must hold 0, 1 and 2 only). */
  labelMap?: LabelMap | null;
  /** Largest allowed difference between image and mask affine entries, in mm (default 1e-3). */
  geometryTolerance?: number;
}

type Header = Pick<NiftiHeaderInfo, 'file' | 'shape' | 'affine'>;

function refuse(file: string, reason: string | null): void {
  if (reason) throw new LitsDataError(file, reason);
}

/** Image and mask headers: 3-D, large enough for `config` (null: any size), on the same grid. */
export function checkPairHeaders(
  image: Header,
  label: Header,
  config: PreprocessConfig | null,
  options: CaseOptions = {},
): void {
  refuse(image.file, dimensionProblem(image));
  refuse(label.file, dimensionProblem(label));
  if (config) refuse(image.file, sizeProblem(shape3(image.shape)!, config));
  refuse(label.file, geometryProblem(image, label, options.geometryTolerance ?? DEFAULT_GEOMETRY_TOLERANCE));
}

/** Throws when the image holds NaN or infinite values (after scaling). */
export function checkImageValues(image: NiftiVolume): void {
  refuse(image.file, imageValueProblem(image));
}

/**
 * The mask as LiTS classes (0, 1, 2, no scaling), the label map applied before anything else looks at it; throws
 * when a value has no class or (with `requireLiver`, as for a liver-centred cube) there is no liver. A uint8 mask that
 * already holds only 0, 1 and 2 is used as it is.
 */
export function mappedLabelGrid(
  label: NiftiVolume,
  map: LabelMap | null,
  requireLiver = true,
): Grid<Uint8Array> {
  const shape = shape3(label.shape);
  if (!shape) throw new LitsDataError(label.file, dimensionProblem(label)!);
  if (label.data.length !== voxelCount(shape))
    throw new LitsDataError(
      label.file,
      `holds ${label.data.length} voxels; shape ${shape.join('×')} needs more`,
    );
  const scale = label.dataIsScaled ? null : scalingOf(label);
  const check = (classes: LabelClassCounts): void => {
    const liverOrNot: LabelClassCounts = requireLiver ? classes : { ...classes, counts: [0, 1, 0] };
    refuse(label.file, labelProblem(liverOrNot, map));
  };
  if (!map && !scale && label.data instanceof Uint8Array) {
    check(countLabelClasses(label.data, null));
    return { data: label.data, shape, scale: null };
  }
  const mapped = applyLabelMap(label.data, map, scale);
  check({ counts: countLabelClasses(mapped.labels, null).counts, foreign: mapped.foreign });
  return { data: mapped.labels, shape, scale: null };
}
