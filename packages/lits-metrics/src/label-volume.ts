import { readNifti, scalingOf, shape3, type Matrix4, type NiftiVolume } from '@lits-ddp/lits-data';
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

function voxelPosition(i: number, shape: Shape3): string {
  const [nx, ny] = shape;
  return `(${i % nx}, ${Math.floor(i / nx) % ny}, ${Math.floor(i / (nx * ny))})`;
}

function notALabel(file: string, value: number, i: number, shape: Shape3): EvaluationError {
  return new EvaluationError(
    `${file}: voxel ${voxelPosition(i, shape)} holds ${value}, not a LiTS label (0 background, 1 liver, 2 tumour)`,
    [file],
  );
}

/** The stored voxels as uint8 labels, checking every value is 0, 1 or 2 (integers stored in any datatype pass). */
function toLabels(volume: NiftiVolume, shape: Shape3): Uint8Array {
  const data = volume.data;
  const scale = volume.dataIsScaled ? null : scalingOf(volume);
  if (data instanceof Uint8Array && !scale) {
    for (let i = 0; i < data.length; i++) if (data[i]! > 2) throw notALabel(volume.file, data[i]!, i, shape);
    return data;
  }
  const out = new Uint8Array(data.length);
  const slope = scale?.slope ?? 1;
  const inter = scale?.inter ?? 0;
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]) * slope + inter;
    const r = Math.round(v);
    if (!(Math.abs(v - r) <= 1e-3) || r < 0 || r > 2) throw notALabel(volume.file, v, i, shape);
    out[i] = r;
  }
  return out;
}

export async function readLabelVolume(file: string): Promise<LabelVolume> {
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
    labels: toLabels(volume, shape),
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
