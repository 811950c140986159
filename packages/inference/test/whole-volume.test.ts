// Every slice of a CT longer than the training's forced slice count gets a prediction, and NaN/±Inf voxels are
// counted and filled: checked with a known voxel-wise predictor, through the same preparation and grid prediction
// `predictVolume` runs, so the expected mask is exact.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  labelToSourceGrid,
  readNifti,
  resolvePreprocessConfig,
  writeNifti,
  type NiftiVolume,
} from '@lits-ddp/lits-data';
import {
  countNonFinite,
  fillNonFinite,
  predictGrid,
  predictionPreprocessing,
  prepareForPrediction,
  NonFiniteVoxelsError,
  type WindowPredictor,
} from '../src/index.js';

/** Class 1 wherever the (block-mean) voxel value is ≥ 1, whatever window it is seen in. */
const pointwise: WindowPredictor = (image) => {
  const out = new Float32Array(image.length * 2);
  for (let i = 0; i < image.length; i++) {
    const liver = image[i]! >= 1;
    out[2 * i] = liver ? 0.1 : 0.9;
    out[2 * i + 1] = liver ? 0.9 : 0.1;
  }
  return out;
};

/** A model trained at 64 forced slices (16³ cubes after a 2× downscale), as in the issue. */
const SEED_64 = resolvePreprocessConfig({ preset: 'seed', targetSlices: 64, downscale: 2, cubeSize: 16 });
const [NX, NY, NZ] = [32, 32, 112];
const at = (x: number, y: number, z: number) => x + NX * (y + NY * z);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lits-whole-volume-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A float32 CT written and read back as `predictVolume` reads it (native). */
async function ct(name: string, data: Float32Array): Promise<NiftiVolume> {
  const file = join(dir, name);
  await writeNifti(file, {
    shape: [NX, NY, NZ],
    data,
    affine: [
      [-0.8, 0, 0, 0],
      [0, -0.8, 0, 0],
      [0, 0, 2.5, 0],
      [0, 0, 0, 1],
    ],
  });
  return readNifti(file, { native: true });
}

/** Mask on the source grid: prepare → sliding window (+ liver crop) → back, as predictVolume does. */
async function maskOf(
  volume: NiftiVolume,
  liverCrop: boolean,
): Promise<{ mask: Uint8Array; grid: number[] }> {
  const whole = await prepareForPrediction(volume, SEED_64);
  const { labels } = predictGrid(whole.image, whole.shape, pointwise, {
    window: 16,
    cubeSize: 16,
    classes: 2,
    liverCrop,
  });
  return { mask: labelToSourceGrid(labels, whole.geometry), grid: whole.shape };
}

describe('a 112-slice CT and a model trained at 64 forced slices', () => {
  // A "liver" of 56 slices at the top end (z 56..111, longer than the 32 source slices of a training cube) and a
  // stray bright spot in the bottom slices 0..3, all aligned to the 2× blocks so the expected mask is exact.
  const image = new Float32Array(NX * NY * NZ);
  for (let z = 56; z < NZ; z++) for (let y = 8; y < 24; y++) image.fill(10, at(8, y, z), at(24, y, z));
  for (let z = 0; z < 4; z++) for (let y = 0; y < 4; y++) image.fill(10, at(0, y, z), at(4, y, z));
  const bright = Uint8Array.from(image, (v) => (v >= 1 ? 1 : 0));
  const slices = (m: Uint8Array) =>
    Array.from({ length: NZ }, (_, z) =>
      m.subarray(z * NX * NY, (z + 1) * NX * NY).reduce((n, v) => n + v, 0),
    );

  it('predicts every slice, both ends included: the grid keeps all 112 slices instead of the middle 64', async () => {
    const { mask, grid } = await maskOf(await ct('bright.nii', image), false);
    expect(grid).toEqual([16, 16, 56]);
    // The sliding-window labels mapped back equal the voxel-wise truth everywhere, slices 0–23 and 88–111 too.
    expect(mask).toEqual(bright);
    expect(slices(mask).slice(0, 4)).toEqual([16, 16, 16, 16]);
    expect(slices(mask).slice(-24)).toEqual(Array<number>(24).fill(256));
  });

  it('with the liver crop, covers the whole liver though it is longer than the training cube', async () => {
    const { mask } = await maskOf(await ct('bright-crop.nii', image), true);
    const perSlice = slices(mask);
    // Slices 56..111 hold the liver, all of it; the stray spot lies outside the liver's region and is dropped.
    expect(perSlice.slice(56)).toEqual(Array<number>(56).fill(256));
    expect(perSlice.slice(0, 56)).toEqual(Array<number>(56).fill(0));
  });

  it('keeps the training padding for a CT shorter than the forced slice count', () => {
    expect(predictionPreprocessing(SEED_64, 40)).toBe(SEED_64);
    expect(predictionPreprocessing(SEED_64, 112)).toEqual({ ...SEED_64, targetSlices: 112 });
    const improved = resolvePreprocessConfig({ preset: 'improved' });
    expect(predictionPreprocessing(improved, 900)).toBe(improved);
  });
});

describe('NaN and ±Inf voxels', () => {
  const image = new Float32Array(NX * NY * NZ).fill(-1000);
  image.fill(60, at(0, 0, 40), at(0, 0, 60));
  image[at(1, 2, 3)] = Number.NaN;
  image[at(5, 5, 100)] = Number.NaN;
  image[at(7, 7, 7)] = Number.POSITIVE_INFINITY;
  image[at(8, 8, 8)] = -500;

  it('are refused with their count and the file named', async () => {
    const volume = await ct('nan.nii', image);
    expect(countNonFinite(volume.data)).toEqual({ nan: 2, infinite: 1, total: NX * NY * NZ });
    const refused = prepareForPrediction(volume, SEED_64);
    await expect(refused).rejects.toBeInstanceOf(NonFiniteVoxelsError);
    await expect(refused).rejects.toThrow(
      `${join(dir, 'nan.nii')}: 3 of ${NX * NY * NZ} voxels are not finite (2 NaN, 1 ±Inf)`,
    );
  });

  it('are replaced by the volume minimum with nanFill, and the grid is finite', async () => {
    const volume = await ct('nan-fill.nii', image);
    const whole = await prepareForPrediction(volume, SEED_64, { nanFill: true });
    expect(whole.nonFinite).toEqual({ voxels: 3, value: -1000 });
    expect(volume.data[at(1, 2, 3)]).toBe(-1000);
    expect(whole.image.every((v) => Number.isFinite(v))).toBe(true);
    // An integer CT cannot hold them; a scan of nothing but NaN has nothing to fill with.
    expect(countNonFinite(new Int16Array(8))).toEqual({ nan: 0, infinite: 0, total: 8 });
    const allNaN = await ct('all-nan.nii', new Float32Array(NX * NY * NZ).fill(Number.NaN));
    expect(() => fillNonFinite(allNaN)).toThrow(`${join(dir, 'all-nan.nii')}: every voxel is NaN or ±Inf`);
  });
});
