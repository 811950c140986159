import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import type { Matrix4 } from '@lits-ddp/lits-data';
import { renderOverlay } from '../src/index.js';

const LPS: Matrix4 = [
  [-0.7, 0, 0, 0],
  [0, -0.7, 0, 0],
  [0, 0, 2.5, 0],
  [0, 0, 0, 1],
];
const RAS: Matrix4 = [
  [0.7, 0, 0, 0],
  [0, 0.7, 0, 0],
  [0, 0, 2.5, 0],
  [0, 0, 0, 1],
];

function pixel(png: PNG, x: number, y: number): number[] {
  const o = (y * png.width + x) * 4;
  return [...png.data.subarray(o, o + 4)];
}

/** 6 × 5 × 3 CT of −160 HU (black) with a bright voxel at (0, 0, 1) and a tumour label at (5, 4, 1). */
function scene() {
  const shape: [number, number, number] = [6, 5, 3];
  const ct = new Int16Array(90).fill(-160);
  const idx = (i: number, j: number, k: number) => i + 6 * (j + 5 * k);
  ct[idx(0, 0, 1)] = 240;
  ct[idx(1, 0, 1)] = 40;
  const mask = new Uint8Array(90);
  mask[idx(5, 4, 1)] = 2;
  mask[idx(4, 4, 1)] = 1;
  return { shape, ct, mask };
}

describe('renderOverlay', () => {
  it('draws the CT in a soft-tissue window with liver and tumour blended, radiological orientation (LPS scan)', () => {
    const { shape, ct, mask } = scene();
    const image = renderOverlay({ data: ct, shape, affine: LPS, scale: null }, mask);
    expect(image.slices).toEqual([1]);
    expect(image.axialAxis).toBe(2);
    const png = PNG.sync.read(image.png);
    expect([png.width, png.height]).toEqual([6, 5]);
    // LPS: i runs towards the patient's left = image right, j towards posterior = image bottom.
    expect(pixel(png, 0, 0)).toEqual([255, 255, 255, 255]);
    expect(pixel(png, 1, 0)).toEqual([128, 128, 128, 255]);
    expect(pixel(png, 2, 2)).toEqual([0, 0, 0, 255]);
    expect(pixel(png, 5, 4)).toEqual([166, 33, 33, 255]); // 0.65·(255, 50, 50) over black
    expect(pixel(png, 4, 4)).toEqual([18, 82, 26, 255]); // 0.4·(46, 204, 64) over black
  });

  it('flips a RAS scan so the patient’s right is still on the image left and anterior on top', () => {
    const { shape, ct, mask } = scene();
    const png = PNG.sync.read(renderOverlay({ data: ct, shape, affine: RAS, scale: null }, mask).png);
    expect(pixel(png, 5, 4)).toEqual([255, 255, 255, 255]);
    expect(pixel(png, 0, 0)).toEqual([166, 33, 33, 255]);
  });

  it('applies the scaling, finds the axial axis from the affine and spreads slices over the liver', () => {
    // Voxel axis 0 runs superior: it is the axial axis. 10 slices; liver on slices 2..7.
    const shape: [number, number, number] = [10, 4, 4];
    const affine: Matrix4 = [
      [0, 0, -0.8, 0],
      [0, -0.8, 0, 0],
      [3, 0, 0, 0],
      [0, 0, 0, 1],
    ];
    const ct = new Int16Array(160).fill(20); // stored 20 · 2 − 200 = −160 HU → black
    const mask = new Uint8Array(160);
    for (let k = 2; k <= 7; k++) mask[k] = 1;
    const image = renderOverlay({ data: ct, shape, affine, scale: { slope: 2, inter: -200 } }, mask, {
      slices: 3,
    });
    expect(image.axialAxis).toBe(0);
    expect(image.slices).toEqual([3, 5, 6]);
    const png = PNG.sync.read(image.png);
    expect([png.width, png.height]).toEqual([3 * 4 + 2 * 4, 4]);
    expect(pixel(png, 5, 2)).toEqual([0, 0, 0, 255]); // the gap between tiles
    expect(() => renderOverlay({ data: ct, shape, affine, scale: null }, new Uint8Array(5))).toThrow(
      /5 voxels/,
    );
  });

  it('draws a reference mask above the prediction, on slices through its tumour', () => {
    // 6 × 5 × 6 CT: liver on slices 0..5 of the reference, its tumour on slices 3..4; the prediction has none.
    const shape: [number, number, number] = [6, 5, 6];
    const n = 6 * 5 * 6;
    const ct = new Int16Array(n).fill(-160);
    const idx = (i: number, j: number, k: number) => i + 6 * (j + 5 * k);
    const reference = new Uint8Array(n);
    const prediction = new Uint8Array(n);
    for (let k = 0; k < 6; k++) reference[idx(4, 4, k)] = prediction[idx(4, 4, k)] = 1;
    for (const k of [3, 4]) reference[idx(5, 4, k)] = 2;
    const image = renderOverlay({ data: ct, shape, affine: LPS, scale: null }, prediction, { reference });
    expect(image.slices).toEqual([3, 4]);
    const png = PNG.sync.read(image.png);
    // Two rows of two 6 × 5 tiles, 4-pixel gaps.
    expect([png.width, png.height]).toEqual([2 * 6 + 4, 2 * 5 + 4]);
    expect(pixel(png, 5, 4)).toEqual([166, 33, 33, 255]); // reference row: tumour
    expect(pixel(png, 5, 5 + 4 + 4)).toEqual([0, 0, 0, 255]); // prediction row: no tumour there
    expect(pixel(png, 4, 5 + 4 + 4)).toEqual([18, 82, 26, 255]); // but liver
    expect(() =>
      renderOverlay({ data: ct, shape, affine: LPS, scale: null }, prediction, {
        reference: new Uint8Array(3),
      }),
    ).toThrow(/reference has 3 voxels/);
  });
});
