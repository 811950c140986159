// The issue's case with a real (briefly trained) model: trained at 64 forced slices, asked for a 112-slice CT whose
// liver lies near the top end. The seed preprocessing used to keep only the middle 64 slices (24..87), so slices
// 0–23 and 88–111 came back 0 whatever they held.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantomVolumes, readNifti, writeNifti, type Matrix4 } from '@lits-ddp/lits-data';
import { loadPredictor, predictVolume, type Predictor } from '../src/index.js';
import { trainTinyRun, type TinyRun } from './tiny-run.js';

const [NX, NY, NZ] = [32, 32, 112];
const PLANE = NX * NY;
/** The trained phantoms' size: their livers span about 26 slices, inside a 16³ training cube (32 source slices). */
const TOP = 48;

let run: TinyRun;
let predictor: Predictor;
let input: string;
let truth: Uint8Array;

beforeAll(async () => {
  run = await trainTinyRun({ size: [NX, NY, TOP], targetSlices: 64, cases: 6, heldOut: [] });
  predictor = await loadPredictor({ model: run.runDir, engine: 'cpu' });
  // Slices 0..63: the rib-free lower body of a tall phantom (no liver); slices 64..111: a phantom the model never saw.
  const lower = generatePhantomVolumes(11, 20, { size: [NX, NY, 512] });
  const top = generatePhantomVolumes(11, 21, { size: [NX, NY, TOP] });
  const image = new Int16Array(PLANE * NZ);
  truth = new Uint8Array(PLANE * NZ);
  image.set(lower.image.subarray(0, PLANE * (NZ - TOP)));
  image.set(top.image, PLANE * (NZ - TOP));
  truth.set(top.label, PLANE * (NZ - TOP));
  expect(lower.label.subarray(0, PLANE * (NZ - TOP)).every((v) => v === 0)).toBe(true);
  const affine: Matrix4 = [
    [-11.2, 0, 0, 173.6],
    [0, -11.2, 0, 173.6],
    [0, 0, 6.25, -346.875],
    [0, 0, 0, 1],
  ];
  input = join(run.home, 'volume-112.nii.gz');
  await writeNifti(input, { shape: [NX, NY, NZ], data: image, affine });
}, 120_000);

afterAll(async () => {
  if (run) await rm(run.home, { recursive: true, force: true });
});

const perSlice = (mask: Uint8Array) =>
  Array.from({ length: NZ }, (_, z) =>
    mask.subarray(z * PLANE, (z + 1) * PLANE).reduce((n, v) => n + (v >= 1 ? 1 : 0), 0),
  );

describe('a 112-slice CT with the liver near one end, model trained at 64 forced slices', () => {
  it('gets liver in every slice whose ground truth holds liver, with and without the liver crop', async () => {
    const truthSlices = perSlice(truth);
    const liverSlices = truthSlices.flatMap((n, z) => (n > 0 ? [z] : []));
    expect(liverSlices.at(-1)).toBeGreaterThan(87); // part of the liver lies where the middle-64 crop cut it off
    for (const liverCrop of [true, false]) {
      const output = join(run.home, `mask-112-${liverCrop ? 'crop' : 'windows'}.nii.gz`);
      const result = await predictVolume({ model: predictor, input, output, liverCrop });
      const mask = (await readNifti(output, { native: true })).data as Uint8Array;
      const predicted = perSlice(mask);
      console.log(
        `112-slice CT, ${liverCrop ? `liver crop ${JSON.stringify(result.liverCrop)}` : 'sliding window only'}: grid ${result.grid.join('×')}, ${result.windows} windows\n  truth liver voxels per slice ${truthSlices.join(' ')}\n  predicted                   ${predicted.join(' ')}`,
      );
      expect(result.grid).toEqual([16, 16, 56]);
      expect(liverSlices.filter((z) => predicted[z] === 0)).toEqual([]);
      if (!liverCrop) {
        // Both ends were predicted, not left at 0: some slice of 0–23 and of 88–111 holds liver and background.
        for (const [from, to] of [
          [0, 24],
          [88, 112],
        ])
          expect(predicted.slice(from, to).some((n) => n > 0 && n < PLANE)).toBe(true);
      }
    }
  });
});
