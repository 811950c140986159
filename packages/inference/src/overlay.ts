// A PNG of a few axial slices: the CT in a soft-tissue window, liver and tumour blended in colour, shown the
// radiological way (patient's right on the image's left, anterior at the top) whatever the scan's orientation.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';
import { axisDirections, type Matrix4, type NiftiData } from '@lits-ddp/lits-data';

export interface OverlayOptions {
  /** Axial slices to show (default 4), evenly spread over the predicted liver, or the scan when there is none. */
  slices?: number;
  /** HU range mapped to black..white (default [-160, 240]: level 40, width 400). */
  window?: [number, number];
  /** RGB and opacity per label (defaults: liver green, tumour red). */
  colours?: Partial<Record<1 | 2, { rgb: [number, number, number]; alpha: number }>>;
  /**
   * A reference mask on the same grid (the ground truth): drawn as a first row above the prediction's, and the
   * slices are spread over its tumour (its liver when it has none), so the figure shows the lesions to compare.
   */
  reference?: Uint8Array;
}

export interface OverlayImage {
  png: Buffer;
  width: number;
  height: number;
  /** Indices of the shown slices along the axial voxel axis. */
  slices: number[];
  axialAxis: 0 | 1 | 2;
}

const DEFAULT_COLOURS = {
  1: { rgb: [46, 204, 64] as [number, number, number], alpha: 0.4 },
  2: { rgb: [255, 50, 50] as [number, number, number], alpha: 0.65 },
};
const GAP = 4;

/** The CT as stored plus its scaling (a `readNifti(…, { native: true })` volume). */
export interface CtVolume {
  data: NiftiData;
  shape: readonly [number, number, number];
  affine: Matrix4;
  scale: { slope: number; inter: number } | null;
}

/**
 * Renders `slices` axial slices side by side. `mask` is on the CT's grid (NIfTI order). The axial axis is the voxel
 * axis closest to the world S–I axis; columns run from the patient's right to left, rows from anterior to posterior.
 */
export function renderOverlay(ct: CtVolume, mask: Uint8Array, options: OverlayOptions = {}): OverlayImage {
  const [nx, ny, nz] = ct.shape;
  // One row of tiles per mask: the reference (when given) above the prediction.
  const rowMasks = options.reference ? [options.reference, mask] : [mask];
  for (const m of rowMasks)
    if (m.length !== nx * ny * nz)
      throw new RangeError(
        `${m === mask ? 'mask' : 'reference'} has ${m.length} voxels; the CT ${ct.shape.join('×')} needs ${nx * ny * nz}`,
      );
  const dirs = axisDirections(ct.affine);
  const axisOf = (world: number) => dirs.findIndex((d) => d.worldAxis === world) as 0 | 1 | 2;
  const axial = axisOf(2);
  const horizontal = axisOf(0);
  const vertical = axisOf(1);
  const strides = [1, nx, nx * ny];
  const sizes = ct.shape;
  const cols = sizes[horizontal];
  const rows = sizes[vertical];
  const depth = sizes[axial];
  // World +x is the patient's right and +y anterior (RAS): right goes to the left, anterior to the top.
  const colIndex = (c: number) => (dirs[horizontal]!.sign > 0 ? cols - 1 - c : c);
  const rowIndex = (r: number) => (dirs[vertical]!.sign > 0 ? rows - 1 - r : r);

  const [lo, hi] = sliceRange(rowMasks[0]!, strides[axial]!, depth, options.reference !== undefined);
  const count = Math.max(1, Math.min(options.slices ?? 4, hi - lo + 1));
  const slices = Array.from({ length: count }, (_, i) =>
    Math.round(lo + ((hi - lo) * (i + 1)) / (count + 1)),
  );

  const [wLo, wHi] = options.window ?? [-160, 240];
  const colours = { ...DEFAULT_COLOURS, ...options.colours };
  const width = count * cols + (count - 1) * GAP;
  const height = rowMasks.length * rows + (rowMasks.length - 1) * GAP;
  const png = new PNG({ width, height, colorType: 6 });
  png.data.fill(0);
  for (let o = 3; o < png.data.length; o += 4) png.data[o] = 255; // gaps opaque black
  const slope = ct.scale?.slope ?? 1;
  const inter = ct.scale?.inter ?? 0;
  rowMasks.forEach((rowMask, row) => {
    const y0 = row * (rows + GAP);
    slices.forEach((k, s) => {
      const x0 = s * (cols + GAP);
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const i =
            colIndex(c) * strides[horizontal]! + rowIndex(r) * strides[vertical]! + k * strides[axial]!;
          const hu = Number(ct.data[i]) * slope + inter;
          const grey = Math.round(255 * Math.min(1, Math.max(0, (hu - wLo) / (wHi - wLo))));
          let rgb = [grey, grey, grey];
          const label = rowMask[i]!;
          const colour = label === 1 || label === 2 ? colours[label] : undefined;
          if (colour)
            rgb = rgb.map((g, ch) => Math.round((1 - colour.alpha) * g + colour.alpha * colour.rgb[ch]!));
          const o = ((y0 + r) * width + x0 + c) * 4;
          png.data[o] = rgb[0]!;
          png.data[o + 1] = rgb[1]!;
          png.data[o + 2] = rgb[2]!;
          png.data[o + 3] = 255;
        }
    });
  });
  return { png: PNG.sync.write(png), width, height, slices, axialAxis: axial };
}

/**
 * The axial range to spread the slices over: where `mask` is labelled, or, with `preferTumour`, where it holds
 * tumour when it has any; the whole depth for an empty mask.
 */
function sliceRange(
  mask: Uint8Array,
  stride: number,
  depth: number,
  preferTumour: boolean,
): [number, number] {
  const range = (accept: (label: number) => boolean): [number, number] | null => {
    let lo = depth;
    let hi = -1;
    for (let i = 0; i < mask.length; i++) {
      if (!accept(mask[i]!)) continue;
      const k = Math.floor(i / stride) % depth;
      if (k < lo) lo = k;
      if (k > hi) hi = k;
    }
    return hi < 0 ? null : [lo, hi];
  };
  return (preferTumour ? range((l) => l === 2) : null) ?? range((l) => l !== 0) ?? [0, depth - 1];
}

export async function writeOverlay(
  path: string,
  ct: CtVolume,
  mask: Uint8Array,
  options?: OverlayOptions,
): Promise<OverlayImage> {
  const image = renderOverlay(ct, mask, options);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, image.png);
  return image;
}
