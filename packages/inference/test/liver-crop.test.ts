import { describe, expect, it } from 'vitest';
import { CounterRng } from '@lits-ddp/counter-rng';
import { cropCube, cubeCropStart, liverCentre, type Shape3 } from '@lits-ddp/lits-data';
import {
  cropGrid,
  cubeStart,
  labelBox,
  labelCentre,
  refineOnLiverCrop,
  type WindowPredictor,
} from '../src/index.js';

/** A seed-order grid [D, H, W] (w fastest) as lits-data's NIfTI order (x = d fastest). */
function toNiftiOrder<T extends Float32Array | Uint8Array>(seed: T, [D, H, W]: Shape3, out: T): T {
  for (let d = 0, i = 0; d < D; d++)
    for (let h = 0; h < H; h++) for (let w = 0; w < W; w++, i++) out[d + D * (h + H * w)] = seed[i]!;
  return out;
}

/** Class 1 wherever the voxel value is ≥ 1, whatever window it is seen in. */
const pointwise: WindowPredictor = (image) => {
  const out = new Float32Array(image.length * 2);
  for (let i = 0; i < image.length; i++) {
    const liver = image[i]! >= 1;
    out[2 * i] = liver ? 0.1 : 0.9;
    out[2 * i + 1] = liver ? 0.9 : 0.1;
  }
  return out;
};

describe('the training crop, on the prediction grid', () => {
  it('finds the centre, the start and the cube exactly as lits-data does when it cuts training cubes', () => {
    const rng = CounterRng.derive(3, 'liver-crop-test');
    const cases: Array<[Shape3, number]> = [
      [[20, 17, 9], 8],
      [[12, 30, 16], 16],
      [[7, 7, 7], 12],
    ];
    for (const [shape, size] of cases) {
      const n = shape[0] * shape[1] * shape[2];
      const labels = new Uint8Array(n);
      const image = new Float32Array(n);
      rng.fillUniform(image, -100, 100);
      for (let i = 0; i < n; i++) if (image[i]! > 80) labels[i] = image[i]! > 95 ? 2 : 1;
      const niftiLabels = { data: toNiftiOrder(labels, shape, new Uint8Array(n)), shape };
      const centre = labelCentre(labels, shape);
      expect(centre).toEqual(liverCentre(niftiLabels));
      const start = cubeStart(centre!, size);
      expect(start).toEqual(cubeCropStart(centre!, [size, size, size]));
      const niftiImage = { data: toNiftiOrder(image, shape, new Float32Array(n)), shape };
      expect(cropGrid(image, shape, start, size)).toEqual(
        cropCube(niftiImage, start, [size, size, size], (k) => new Float32Array(k)),
      );
    }
    expect(labelCentre(new Uint8Array(27), [3, 3, 3])).toBeNull();
  });
});

describe('refineOnLiverCrop', () => {
  /** A 12³ "liver" block at [20, 8, 4] in a 40×24×16 grid, plus a stray voxel the first pass also calls liver. */
  const shape: Shape3 = [40, 24, 16];
  const image = new Float32Array(40 * 24 * 16);
  const at = (d: number, h: number, w: number) => (d * 24 + h) * 16 + w;
  for (let d = 20; d < 32; d++)
    for (let h = 8; h < 20; h++) for (let w = 4; w < 16; w++) image[at(d, h, w)] = 1;
  const located = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i++) located[i] = image[i]! >= 1 ? 1 : 0;
  located[at(0, 0, 0)] = 1;

  it('moves the cube onto the liver until its centre settles, and labels nothing outside the cube', () => {
    const r = refineOnLiverCrop(image, shape, located, pointwise, { size: 16, classes: 2 });
    expect(r).not.toBeNull();
    // First centre from the stray voxel plus the block: (0 + 31) / 2 … ; then on the block alone.
    expect(r!.centres[0]).toEqual([15, 9, 7]);
    expect(r!.centres.at(-1)).toEqual([25, 13, 9]);
    expect(r!.rounds).toBeLessThanOrEqual(3);
    const [s0, s1, s2] = r!.start;
    let inside = 0;
    for (let d = 0; d < 40; d++)
      for (let h = 0; h < 24; h++)
        for (let w = 0; w < 16; w++) {
          const v = r!.labels[at(d, h, w)]!;
          const inCube = d >= s0 && d < s0 + 16 && h >= s1 && h < s1 + 16 && w >= s2 && w < s2 + 16;
          if (!inCube) expect(v).toBe(0);
          else if (v === 1) inside++;
        }
    // The cube ends at the grid's far end on w (zero fill past it); the whole block lies inside.
    expect(inside).toBe(12 * 12 * 12);
  });

  it('stops after maxRounds, does not grow in-plane, and gives null when the sliding window found no liver', () => {
    // The one cube, pulled off the block by the stray voxel, cuts the block at d = 22 and h = 16: in-plane the cube
    // stays the trainer's, as the trainer cut livers wider than its cube.
    const one = refineOnLiverCrop(image, shape, located, pointwise, { size: 16, classes: 2, maxRounds: 1 });
    expect(one!.rounds).toBe(1);
    expect(one!.start).toEqual(cubeStart([15, 9, 7], 16));
    expect(one!.end).toEqual([23, 17, 16]);
    expect(
      refineOnLiverCrop(image, shape, new Uint8Array(image.length), pointwise, { size: 16, classes: 2 }),
    ).toBeNull();
  });
});

describe('a liver longer than the training cube along z', () => {
  /** A 40-slice "liver" along w = z (10..49) of a 16 × 16 × 64 grid: a 16³ cube holds only part of it. */
  const shape: Shape3 = [16, 16, 64];
  const image = new Float32Array(16 * 16 * 64);
  for (let d = 3; d < 13; d++)
    for (let h = 0; h < 16; h++) image.fill(1, (d * 16 + h) * 64 + 10, (d * 16 + h) * 64 + 50);

  it('is covered by overlapping cube-size windows up to where the sliding window saw it end', () => {
    const located = Uint8Array.from(image, (v) => (v >= 1 ? 1 : 0));
    const r = refineOnLiverCrop(image, shape, located, pointwise, { size: 16, classes: 2 })!;
    expect(labelBox(r.labels, shape)).toEqual({ lo: [3, 0, 10], hi: [12, 15, 49] });
    expect(r.labels).toEqual(located);
    // One centred cube (z 21..36), which cuts the liver at both faces, then the region z 10..49 in 4 windows.
    expect(r).toMatchObject({ start: [0, 0, 10], end: [16, 16, 50], rounds: 2, windows: 1 + 4 });
  });

  it('grows no further than the sliding window’s liver, nor along another axis unless asked', () => {
    // The sliding window saw only z 20..39: the crop finds more, but grows only to the located ends.
    const located = new Uint8Array(image.length);
    for (let i = 0; i < image.length; i++) if (image[i]! >= 1 && i % 64 >= 20 && i % 64 < 40) located[i] = 1;
    const r = refineOnLiverCrop(image, shape, located, pointwise, { size: 16, classes: 2 })!;
    expect([r.start[2], r.end[2]]).toEqual([20, 40]);
    expect(labelBox(r.labels, shape)).toEqual({ lo: [3, 0, 20], hi: [12, 15, 39] });
    // The same liver lying along d: one cube by default, the whole liver with growAxes [0].
    const alongD: Shape3 = [64, 16, 16];
    const lying = new Float32Array(image.length);
    for (let d = 10; d < 50; d++) lying.fill(1, d * 256 + 3 * 16, d * 256 + 13 * 16);
    const mask = Uint8Array.from(lying);
    const cube = refineOnLiverCrop(lying, alongD, mask, pointwise, { size: 16, classes: 2 })!;
    expect(cube).toMatchObject({ start: [21, 0, 0], end: [37, 16, 16], rounds: 1, windows: 1 });
    const grown = refineOnLiverCrop(lying, alongD, mask, pointwise, { size: 16, classes: 2, growAxes: [0] })!;
    expect(grown).toMatchObject({ start: [10, 0, 0], end: [50, 16, 16], rounds: 2 });
    expect(grown.labels).toEqual(mask);
  });
});
