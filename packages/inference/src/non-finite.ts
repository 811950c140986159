// NaN and ±Inf voxels in a CT. One of them poisons every window whose receptive field reaches it (the convolutions
// and batch norm spread NaN; the argmax of NaN is class 0), so a scan with a few of them predicts as all background.
// Only float datatypes can hold them; integer CTs (LiTS's int16) cost nothing here.
import type { NiftiData, NiftiVolume } from '@lits-ddp/lits-data';
import { LitsDataError, scalingOf } from '@lits-ddp/lits-data';

export interface NonFiniteCount {
  nan: number;
  /** +Inf and −Inf. */
  infinite: number;
  total: number;
}

const isFloat = (data: NiftiData): data is Float32Array | Float64Array =>
  data instanceof Float32Array || data instanceof Float64Array;

/** Counts the NaN and ±Inf values of stored voxels (zero for integer datatypes). */
export function countNonFinite(data: NiftiData): NonFiniteCount {
  let nan = 0;
  let infinite = 0;
  if (isFloat(data))
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v - v !== 0) {
        if (v !== v) nan++;
        else infinite++;
      }
    }
  return { nan, infinite, total: data.length };
}

export interface NonFiniteFill {
  /** Voxels replaced. */
  voxels: number;
  /** The real value (after the header's slope and intercept) they now hold: the smallest finite one of the volume. */
  value: number;
}

/**
 * Replaces NaN and ±Inf stored voxels, in place, by the stored value whose real value is the volume's smallest
 * (air, like the seed's z padding). Null when there is nothing to replace; throws when no voxel is finite.
 */
export function fillNonFinite(volume: NiftiVolume): NonFiniteFill | null {
  const data = volume.data;
  if (!isFloat(data)) return null;
  let min = Infinity;
  let max = -Infinity;
  let bad = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) bad++;
    else {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (bad === 0) return null;
  if (bad === data.length)
    throw new LitsDataError(
      volume.file,
      'every voxel is NaN or ±Inf; there is no finite value to fill them with',
    );
  // A native read keeps the stored values; a negative slope makes the largest stored value the smallest real one.
  const scale = volume.dataIsScaled ? null : scalingOf(volume);
  const stored = scale && scale.slope < 0 ? max : min;
  for (let i = 0; i < data.length; i++) if (data[i]! - data[i]! !== 0) data[i] = stored;
  return { voxels: bad, value: scale ? stored * scale.slope + scale.inter : stored };
}
