import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  generatePhantomDataset,
  improvedPresetWhole,
  labelToSourceGrid,
  orientationCode,
  prepareWholeVolume,
  preprocessCase,
  preprocessVolumes,
  readNifti,
  resolvePreprocessConfig,
  windowAndStandardise,
  type Grid,
  type Shape3,
} from '../src/index.js';
import { tempDir } from './test-environment.js';

const tmp = tempDir('presets');
afterAll(tmp.cleanup);

/** First/last index per axis of label ≥ 1 in a seed-order cube, and the resulting centre. */
function cubeLiverBox(label: Uint8Array, shape: Shape3): { lo: number[]; hi: number[]; centre: number[] } {
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-1, -1, -1];
  for (let d = 0; d < shape[0]; d++)
    for (let h = 0; h < shape[1]; h++)
      for (let w = 0; w < shape[2]; w++)
        if (label[(d * shape[1] + h) * shape[2] + w]! >= 1)
          [d, h, w].forEach((v, a) => {
            lo[a] = Math.min(lo[a]!, v);
            hi[a] = Math.max(hi[a]!, v);
          });
  return { lo, hi, centre: lo.map((l, a) => Math.floor(l + (hi[a]! - l) / 2)) };
}

function dice(a: Uint8Array, b: Uint8Array): number {
  let both = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! >= 1 ? 1 : 0;
    const y = b[i]! >= 1 ? 1 : 0;
    both += x & y;
    sum += x + y;
  }
  return (2 * both) / sum;
}

describe('seed preset on a generated full-size phantom (512×512×120)', () => {
  it(
    'yields a 128³ cube centred on the liver, raw HU, z padded with the volume minimum',
    { timeout: 120_000 },
    async () => {
      const dir = join(tmp.dir, 'full');
      const [c] = await generatePhantomDataset({
        outDir: dir,
        cases: 1,
        size: [512, 512, 120],
        seed: 3,
        compress: false,
      });
      const cube = await preprocessCase(c!, resolvePreprocessConfig({ preset: 'seed' }));
      expect(cube.shape).toEqual([128, 128, 128]);
      expect(cube.image).toBeInstanceOf(Float32Array);
      expect(cube.label).toBeInstanceOf(Uint8Array);
      expect(cube.geometry.sliceCount).toMatchObject({ target: 512, padBefore: 196, padAfter: 196 });
      expect(cube.geometry.fullShape).toEqual([256, 256, 256]);
      const box = cubeLiverBox(cube.label, cube.shape);
      expect(box.centre).toEqual([64, 64, 64]);
      box.lo.forEach((v) => expect(v).toBeGreaterThan(0));
      box.hi.forEach((v) => expect(v).toBeLessThan(127));
      // Raw HU: the liver averages near 60 HU, and slices from the z padding hold the volume minimum.
      let liverSum = 0;
      let liverCount = 0;
      cube.label.forEach((l, i) => {
        if (l === 1) {
          liverSum += cube.image[i]!;
          liverCount++;
        }
      });
      expect(liverSum / liverCount).toBeGreaterThan(40);
      expect(liverSum / liverCount).toBeLessThan(75);
      const source = await readNifti(c!.image, { native: true });
      let min = Infinity;
      for (const v of source.data) min = Math.min(min, v);
      // Cube columns w < padEnd come from blocks made only of padding slices.
      const padEnd = cube.geometry.sliceCount!.padBefore / 2 - cube.geometry.cropStart![2];
      expect(padEnd).toBeGreaterThan(0);
      const column = (64 * 128 + 64) * 128;
      expect(cube.image[column]).toBe(min);
      expect(cube.image[column + padEnd - 1]).toBe(min);
      expect(cube.image[column + padEnd]).toBeGreaterThan(min);
    },
  );
});

describe('seed preset on a .nii.gz case', () => {
  it('gives the same cube whether the file is streamed (running minimum) or preprocessed in memory', async () => {
    const dir = join(tmp.dir, 'streamed');
    const [c] = await generatePhantomDataset({ outDir: dir, cases: 1, size: [96, 80, 20], seed: 12 });
    const config = resolvePreprocessConfig({ preset: 'seed', targetSlices: 64, cubeSize: 32 });
    const streamed = await preprocessCase(c!, config);
    const image = await readNifti(c!.image, { native: true });
    const label = await readNifti(c!.label, { native: true });
    const inMemory = preprocessVolumes(image, label, config);
    expect(streamed.geometry.sliceCount!.padBefore).toBe(22);
    expect(Buffer.compare(Buffer.from(streamed.image.buffer), Buffer.from(inMemory.image.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(streamed.label), Buffer.from(inMemory.label))).toBe(0);
    expect(streamed.image[0]).toBe((image.data as Int16Array).reduce((a, b) => Math.min(a, b), Infinity));
  });
});

describe('improved preset: RAS, target spacing, HU window, z-score', () => {
  it('reorients an LPS volume to RAS exactly when the spacing is unchanged', () => {
    const shape: Shape3 = [6, 5, 4];
    const data = new Float32Array(120).fill(0);
    data[1 + 6 * (3 + 5 * 2)] = 100; // marker at (1, 3, 2)
    const grid: Grid = { data, shape };
    const affine = [
      [-2, 0, 0, 10],
      [0, -3, 0, 12],
      [0, 0, 4, -8],
      [0, 0, 0, 1],
    ];
    const out = improvedPresetWhole(grid, null, affine, {
      preset: 'improved',
      targetSpacing: [2, 3, 4],
      window: [-1000, 1000],
      cubeSize: 4,
    });
    expect(out.shape).toEqual([6, 5, 4]);
    expect(orientationCode(out.geometry.outputAffine)).toBe('RAS');
    let best = 0;
    out.image.forEach((v, i) => {
      if (v > out.image[best]!) best = i;
    });
    // Seed order (d, h, w): x and y flipped, z kept.
    expect(best).toBe(((6 - 1 - 1) * 5 + (5 - 1 - 3)) * 4 + 2);
    // World position of the marker is unchanged.
    const world = (m: number[][], v: number[]) =>
      m.slice(0, 3).map((row) => row.reduce((s, x, i) => s + x * (v[i] ?? 1), 0));
    expect(world(out.geometry.outputAffine, [4, 1, 2, 1])).toEqual(world(affine, [1, 3, 2, 1]));
  });

  it('clips to the HU window before the z-score: −1000 and +2000 regions give the same output as −200 and 250', () => {
    const window: [number, number] = [-200, 250];
    const shape: Shape3 = [8, 6, 4];
    // A low region, a soft-tissue middle and a high region; only the outer two lie outside the window.
    const volume = (low: number, high: number): Float32Array =>
      Float32Array.from({ length: 192 }, (_, i) => (i < 48 ? low : i >= 144 ? high : 20 + (i % 7) * 10));
    const identity = [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ];
    const run = (data: Float32Array, w: [number, number]): Float32Array =>
      improvedPresetWhole({ data, shape }, null, identity, {
        preset: 'improved',
        targetSpacing: [1, 1, 1],
        window: w,
        cubeSize: 4,
      }).image;
    const extreme = run(volume(-1000, 2000), window);
    const atBounds = run(volume(-200, 250), window);
    expect(Buffer.compare(Buffer.from(extreme.buffer), Buffer.from(atBounds.buffer))).toBe(0);
    // Without the clip (a window wider than the data) the same volume standardises to different values.
    const unclipped = run(volume(-1000, 2000), [-5000, 5000]);
    expect(Buffer.compare(Buffer.from(extreme.buffer), Buffer.from(unclipped.buffer))).not.toBe(0);
    // The extremes become the z-scores of the window bounds, with the mean and std of the clipped volume.
    const clipped = volume(-200, 250);
    const mean = clipped.reduce((s, v) => s + v, 0) / clipped.length;
    const std = Math.sqrt(clipped.reduce((s, v) => s + (v - mean) ** 2, 0) / clipped.length);
    expect(Math.min(...extreme)).toBeCloseTo((-200 - mean) / std, 5);
    expect(Math.max(...extreme)).toBeCloseTo((250 - mean) / std, 5);
    // windowAndStandardise on its own, element by element.
    const direct = volume(-1000, 2000);
    windowAndStandardise(direct, window);
    direct.forEach((v, i) => expect(v).toBeCloseTo((clipped[i]! - mean) / std, 5));
  });

  it('on a phantom: RAS grid at the target spacing, z-scored, liver-centred cube, and maps back to the source', async () => {
    const dir = join(tmp.dir, 'improved');
    const [c] = await generatePhantomDataset({ outDir: dir, cases: 1, seed: 8 });
    const config = resolvePreprocessConfig({ preset: 'improved', targetSpacing: [6, 6, 6], cubeSize: 32 });
    const whole = await prepareWholeVolume(c!.image, config, c!.label);
    expect(whole.shape).toEqual([60, 60, 50]);
    const a = whole.geometry.outputAffine;
    expect(orientationCode(a)).toBe('RAS');
    [0, 1, 2].forEach((i) => expect(a[i]![i]).toBeCloseTo(6, 9));
    let sum = 0;
    let sumSq = 0;
    for (const v of whole.image) {
      sum += v;
      sumSq += v * v;
    }
    const mean = sum / whole.image.length;
    expect(mean).toBeCloseTo(0, 4);
    expect(Math.sqrt(sumSq / whole.image.length - mean * mean)).toBeCloseTo(1, 3);
    const source = await readNifti(c!.label, { native: true });
    const back = labelToSourceGrid(whole.label!, whole.geometry);
    expect(dice(back, source.data as Uint8Array)).toBeGreaterThan(0.85);
    const cube = await preprocessCase(c!, config);
    expect(cube.shape).toEqual([32, 32, 32]);
    expect(cube.geometry.preset).toBe('improved');
    const box = cubeLiverBox(cube.label, cube.shape);
    box.centre.forEach((v, axis) => {
      const start = cube.geometry.cropStart![axis]!;
      expect(v).toBe(cube.geometry.centre![axis]! - start);
    });
  });
});
