import {
  applyLabelMap,
  describeForeignLabels,
  readNifti,
  scalingOf,
  shape3,
  type LabelMap,
  type Matrix4,
  type NiftiVolume,
} from '@lits-ddp/lits-data';
import type { Shape3 } from './distance-transform.js';
import { EvaluationError } from './errors.js';

/** A LiTS label volume (0 background, 1 liver, 2 tumour) in NIfTI order, with its geometry. */
export interface LabelVolume {
  file: string;
  shape: Shape3;
  /** Header spacing (pixdim, mm) along x, y, z: what the LiTS code passes to its surface distances. */
  spacing: Shape3;
  affine: Matrix4;
  labels: Uint8Array;
}

export interface ReadLabelVolumeOptions {
  /**
   * What each stored value means (lits-data's `parseLabelMap`: `liver=5`, `5:1,6:2,*:0`); without one the mask must
   * hold 0, 1 and 2 only.
   */
  labelMap?: LabelMap | null;
  /** Names the mask in errors and says which flag maps it (default 'ground truth': `--label-map` / `--labels`). */
  role?: 'prediction' | 'ground truth';
}

/** Values per chunk: the scaled copy stays small whatever the volume's size. */
const CHUNK = 1 << 20;

function voxelPosition(i: number, shape: Shape3): string {
  const [nx, ny] = shape;
  return `(${i % nx}, ${Math.floor(i / nx) % ny}, ${Math.floor(i / (nx * ny))})`;
}

/** The real value of voxel i, rounded when within 1e-3 of an integer (float masks written with rounding noise). */
function realValue(data: NiftiVolume['data'], i: number, slope: number, inter: number): number {
  const v = Number(data[i]) * slope + inter;
  const r = Math.round(v);
  return Math.abs(v - r) <= 1e-3 ? r : v;
}

function foreignError(
  volume: NiftiVolume,
  shape: Shape3,
  foreign: ReadonlyArray<readonly [number, number]>,
  role: 'prediction' | 'ground truth',
  value: (i: number) => number,
): EvaluationError {
  const values = new Set(foreign.map(([v]) => v));
  let first = 0;
  while (first < volume.data.length && !values.has(value(first))) first++;
  const where = `first at voxel ${voxelPosition(first, shape)}`;
  const reason =
    role === 'ground truth'
      ? describeForeignLabels(foreign)
      : `a prediction must hold 0 background, 1 liver, 2 tumour, or be named by --pred-label-map (e.g. 5:1,*:0); found ${foreign
          .slice(0, 5)
          .map(([v, n]) => `${v} (${n} voxel${n === 1 ? '' : 's'})`)
          .join(', ')}${foreign.length > 5 ? ` and ${foreign.length - 5} more values` : ''}`;
  return new EvaluationError(`${volume.file} (${role}): ${reason}; ${where}`, [volume.file]);
}

/** The stored voxels as uint8 LiTS labels through the label map; a value without a class is an error naming it. */
function toLabels(
  volume: NiftiVolume,
  shape: Shape3,
  map: LabelMap | null,
  role: 'prediction' | 'ground truth',
): Uint8Array {
  const data = volume.data;
  const scale = volume.dataIsScaled ? null : scalingOf(volume);
  const slope = scale?.slope ?? 1;
  const inter = scale?.inter ?? 0;
  const value = (i: number) => realValue(data, i, slope, inter);
  // The common case, a LiTS uint8 mask: checked in place, no copy.
  if (data instanceof Uint8Array && !scale && !map) {
    let i = 0;
    while (i < data.length && data[i]! <= 2) i++;
    if (i === data.length) return data;
  }
  // Integers of up to 16 bits map exactly, through lits-data's histogram; anything else (float masks, a slope)
  // goes through its rounded real values a chunk at a time.
  const small =
    data instanceof Uint8Array ||
    data instanceof Int8Array ||
    data instanceof Uint16Array ||
    data instanceof Int16Array;
  if (small && !scale) {
    const mapped = applyLabelMap(data, map);
    if (mapped.foreign.length > 0) throw foreignError(volume, shape, mapped.foreign, role, value);
    return mapped.labels;
  }
  const out = new Uint8Array(data.length);
  const foreign = new Map<number, number>();
  const chunk = new Float64Array(Math.min(CHUNK, data.length));
  for (let from = 0; from < data.length; from += CHUNK) {
    const n = Math.min(CHUNK, data.length - from);
    for (let k = 0; k < n; k++) chunk[k] = value(from + k);
    const mapped = applyLabelMap(chunk.subarray(0, n), map);
    out.set(mapped.labels, from);
    for (const [v, count] of mapped.foreign) foreign.set(v, (foreign.get(v) ?? 0) + count);
  }
  if (foreign.size > 0)
    throw foreignError(
      volume,
      shape,
      [...foreign].sort((a, b) => b[1] - a[1] || a[0] - b[0]),
      role,
      value,
    );
  return out;
}

export async function readLabelVolume(
  file: string,
  options: ReadLabelVolumeOptions = {},
): Promise<LabelVolume> {
  const volume = await readNifti(file, { native: true });
  const shape = shape3(volume.shape);
  if (!shape)
    throw new EvaluationError(
      `${file}: a ${volume.shape.length}-D image (shape ${volume.shape.join('×')}); a label volume must be 3-D`,
      [file],
    );
  const spacing = volume.spacing.slice(0, 3);
  if (spacing.length !== 3 || spacing.some((s) => !(s > 0) || !Number.isFinite(s)))
    throw new EvaluationError(`${file}: header spacing ${spacing.join(' × ')} is not 3 positive numbers`, [
      file,
    ]);
  return {
    file,
    shape,
    spacing: spacing as unknown as Shape3,
    affine: volume.affine,
    labels: toLabels(volume, shape, options.labelMap ?? null, options.role ?? 'ground truth'),
  };
}
function formatAffine(a: Matrix4): string {
  return `[${a
    .slice(0, 3)
    .map((r) => r.map((v) => Number(v.toFixed(4))).join(' '))
    .join('; ')}]`;
}

/** Throws unless prediction and truth share shape and affine (within `tolerance` mm per affine entry). */
export function checkSameGrid(pred: LabelVolume, truth: LabelVolume, tolerance = 1e-3): void {
  const files = [pred.file, truth.file];
  if (pred.shape.some((n, a) => n !== truth.shape[a]))
    throw new EvaluationError(
      `prediction ${pred.file} has shape ${pred.shape.join('×')} but ground truth ${truth.file} has ${truth.shape.join('×')}`,
      files,
    );
  let worst = 0;
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++) worst = Math.max(worst, Math.abs(pred.affine[r]![c]! - truth.affine[r]![c]!));
  if (!(worst <= tolerance))
    throw new EvaluationError(
      `prediction ${pred.file} and ground truth ${truth.file} lie on different grids: their affines differ by up to ` +
        `${Number(worst.toPrecision(4))} mm (tolerance ${tolerance}): ${formatAffine(pred.affine)} vs ${formatAffine(truth.affine)}`,
      files,
    );
}
