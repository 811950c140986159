import { describe, expect, it } from 'vitest';
import { CounterRng } from '@lits-ddp/counter-rng';
import {
  cropCube,
  cubeCropStart,
  downscaleLabel,
  downscaleMean,
  forceSliceCount,
  labelToSourceGrid,
  liverCentre,
  planSliceCount,
  prepareWholeVolume,
  roundHalfEven,
  seedPresetCube,
  seedPresetWhole,
  type Grid,
  type Matrix4,
  type NiftiVolume,
  type SeedPresetConfig,
  type Shape3,
} from '../src/index.js';
import { npRound, seedReference, type RefVolume } from './seed-reference.js';

const AFFINE: Matrix4 = [
  [-0.7, 0, 0, 170],
  [0, -0.7, 0, 160],
  [0, 0, 2.5, -300],
  [0, 0, 0, 1],
];

interface Case {
  name: string;
  shape: Shape3;
  target: number;
  factor: number;
  cube: number;
  /** Liver ellipsoid centre as a fraction of each axis. */
  liver: Shape3;
}

const CASES: Case[] = [
  {
    name: 'z padded, even factor',
    shape: [12, 10, 5],
    target: 8,
    factor: 2,
    cube: 4,
    liver: [0.5, 0.5, 0.5],
  },
  { name: 'z centre-cropped', shape: [10, 12, 13], target: 8, factor: 2, cube: 6, liver: [0.4, 0.6, 0.5] },
  {
    name: 'odd sizes and factor 3 (skimage zero padding)',
    shape: [11, 7, 6],
    target: 10,
    factor: 3,
    cube: 3,
    liver: [0.5, 0.5, 0.5],
  },
  {
    name: 'liver at the low border (negative start clamped)',
    shape: [16, 16, 6],
    target: 8,
    factor: 2,
    cube: 6,
    liver: [0.05, 0.1, 0.5],
  },
  {
    name: 'liver at the high border (zero-padded at the end)',
    shape: [16, 14, 6],
    target: 8,
    factor: 2,
    cube: 6,
    liver: [0.95, 0.9, 0.9],
  },
  {
    name: 'cube larger than the volume, factor 1',
    shape: [5, 6, 4],
    target: 4,
    factor: 1,
    cube: 8,
    liver: [0.5, 0.5, 0.5],
  },
];

function makeCase(c: Case, seed: number): { image: Int16Array; label: Uint8Array } {
  const rng = CounterRng.derive('lits-data-tests', 'seed-preset', c.name, seed);
  const [nx, ny, nz] = c.shape;
  const image = new Int16Array(nx * ny * nz);
  const label = new Uint8Array(nx * ny * nz);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        image[i] = rng.int(3000) - 1500;
        const d = [x / nx - c.liver[0], y / ny - c.liver[1], z / nz - c.liver[2]];
        const inside = d[0]! ** 2 + d[1]! ** 2 + d[2]! ** 2 < 0.06;
        // Random labels inside the blob make plenty of exact .5 block means (the half-to-even cases).
        label[i] = inside ? 1 + rng.int(2) : rng.int(40) === 0 ? 2 : 0;
      }
  return { image, label };
}

function refVolume(data: ArrayLike<number>, shape: Shape3): RefVolume {
  return { shape, get: (x, y, z) => data[x + shape[0] * (y + shape[1] * z)]! };
}

function config(c: Case): SeedPresetConfig {
  return { preset: 'seed', targetSlices: c.target, downscale: c.factor, cubeSize: c.cube };
}

describe('seed preset building blocks', () => {
  it('rounds half to even like np.round, including negative ties', () => {
    const xs = [-2.5, -1.5, -0.5, 0, 0.49, 0.5, 0.51, 1.5, 2.5, 3.5, 1.25, 7 / 8, 4 / 8, 12 / 8, 20 / 8];
    expect(xs.map((x) => roundHalfEven(x) + 0)).toEqual(xs.map(npRound));
    expect([0.5, 1.5, 2.5].map(roundHalfEven)).toEqual([0, 2, 2]);
  });

  it('plans the slice count like the notebook: pad (odd slice after) or centre crop', () => {
    expect(planSliceCount(5, 8)).toEqual({
      target: 8,
      padBefore: 1,
      padAfter: 2,
      cropBefore: 0,
      cropAfter: 0,
    });
    expect(planSliceCount(200, 512)).toMatchObject({ padBefore: 156, padAfter: 156 });
    expect(planSliceCount(13, 8)).toEqual({
      target: 8,
      padBefore: 0,
      padAfter: 0,
      cropBefore: 2,
      cropAfter: 3,
    });
    expect(planSliceCount(8, 8)).toMatchObject({ padBefore: 0, cropBefore: 0 });
  });

  it('forceSliceCount, downscale, centre and crop each match the reference', () => {
    const c = CASES[0]!;
    const { image, label } = makeCase(c, 1);
    const grid: Grid = { data: image, shape: c.shape };
    const forced = forceSliceCount(grid, c.target, -7);
    const ref = refVolume(image, c.shape);
    for (let z = 0; z < c.target; z++) {
      const src = z - 1; // padBefore 1 for 5 → 8
      const expected = src < 0 || src >= 5 ? -7 : ref.get(3, 4, src);
      expect(forced.data[3 + 12 * (4 + 10 * z)]).toBe(expected);
    }
    const mean = downscaleMean(grid, 2);
    const direct = downscaleMean({ data: image, shape: c.shape }, 2, {
      region: { start: [1, 2, 0], size: [3, 2, 2] },
    });
    for (let k = 0; k < 2; k++)
      for (let j = 0; j < 2; j++)
        for (let i = 0; i < 3; i++)
          expect(direct.data[i + 3 * (j + 2 * k)]).toBe(mean.data[i + 1 + 6 * (j + 2 + 5 * k)]);
    const lab = downscaleLabel({ data: label, shape: c.shape }, 2, { slicePlan: planSliceCount(5, 8) });
    const centre = liverCentre(lab);
    expect(centre).not.toBeNull();
    if (lab.bounds)
      expect(centre).toEqual(lab.bounds.lo.map((lo, a) => Math.floor(lo + (lab.bounds!.hi[a]! - lo) / 2)));
    expect(cubeCropStart([1, 5, 9], [4, 4, 4])).toEqual([0, 3, 7]);
    const cube = cropCube(lab, [4, 3, 2], [3, 3, 3], (n) => new Uint8Array(n));
    expect(cube.length).toBe(27);
    expect(cube[(2 * 3 + 0) * 3 + 1]).toBe(lab.data[4 + 2 + 6 * (3 + 0 + 5 * (2 + 1))]);
  });
});

describe('seed preset matches a brute-force reference on random small volumes', () => {
  for (const c of CASES) {
    for (const seed of [1, 2]) {
      it(`${c.name} (seed ${seed})`, () => {
        const { image, label } = makeCase(c, seed);
        const ours = seedPresetCube(
          { data: image, shape: c.shape },
          { data: label, shape: c.shape },
          AFFINE,
          config(c),
        );
        const ref = seedReference(
          refVolume(image, c.shape),
          refVolume(label, c.shape),
          c.target,
          c.factor,
          c.cube,
        );
        expect(ours.geometry.centre).toEqual(ref.centre);
        expect(ours.geometry.cropStart).toEqual(ref.start);
        expect(ours.shape).toEqual([c.cube, c.cube, c.cube]);
        expect(Array.from(ours.label)).toEqual(ref.label);
        expect(Array.from(ours.image)).toEqual(ref.image);
        const half = Math.floor(c.cube / 2);
        const full = ref.downscaledLabel.shape;
        if (c.name.includes('low border')) expect(ref.centre.some((v) => v - half < 0)).toBe(true);
        if (c.name.includes('high border') || c.name.includes('larger'))
          expect(ref.start.some((v, a) => v + c.cube > full[a]!)).toBe(true);
      });
    }
  }

  it('applies slope/intercept (float32 per voxel, as the seed casts) before averaging', () => {
    const c = CASES[1]!;
    const { image, label } = makeCase(c, 3);
    const scale = { slope: 0.37656497955322266, inter: 7.742551803588867 };
    const ours = seedPresetCube(
      { data: image, shape: c.shape, scale },
      { data: label, shape: c.shape },
      AFFINE,
      config(c),
    );
    const real = refVolume(
      Array.from(image, (v) => Math.fround(v * scale.slope + scale.inter)),
      c.shape,
    );
    const ref = seedReference(real, refVolume(label, c.shape), c.target, c.factor, c.cube);
    ours.image.forEach((v, i) => expect(v).toBeCloseTo(ref.image[i]!, 3));
  });

  it('the whole-volume variant (no crop) equals the reference downscale, in seed order', () => {
    const c = CASES[2]!;
    const { image, label } = makeCase(c, 1);
    const whole = seedPresetWhole(
      { data: image, shape: c.shape },
      { data: label, shape: c.shape },
      AFFINE,
      config(c),
    );
    const ref = seedReference(refVolume(image, c.shape), refVolume(label, c.shape), c.target, c.factor, 1);
    const [dx, dy, dz] = ref.downscaledImage.shape;
    expect(whole.shape).toEqual([dx, dy, dz]);
    for (let x = 0; x < dx; x++)
      for (let y = 0; y < dy; y++)
        for (let z = 0; z < dz; z++) {
          const nifti = x + dx * (y + dy * z);
          const seedOrder = (x * dy + y) * dz + z;
          expect(whole.image[seedOrder]).toBe(ref.downscaledImage.data[nifti]);
          expect(whole.label![seedOrder]).toBe(ref.downscaledLabel.data[nifti]);
        }
    expect(whole.geometry.cropStart).toBeNull();
  });
});

describe('geometry: mapping predictions back to the source grid', () => {
  function expectedBack(
    c: Case,
    down: { data: ArrayLike<number>; shape: Shape3 },
    start: Shape3,
    size: Shape3,
  ) {
    const plan = planSliceCount(c.shape[2], c.target);
    const [nx, ny, nz] = c.shape;
    const out = new Uint8Array(nx * ny * nz);
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < nx; x++) {
          const zf = z + plan.padBefore - plan.cropBefore;
          if (zf < 0 || zf >= c.target) continue;
          const d = [Math.floor(x / c.factor), Math.floor(y / c.factor), Math.floor(zf / c.factor)];
          const o = d.map((v, a) => v - start[a]!);
          if (o.some((v, a) => v < 0 || v >= size[a]!)) continue;
          out[x + nx * (y + ny * z)] = down.data[d[0]! + down.shape[0] * (d[1]! + down.shape[1] * d[2]!)]!;
        }
    return out;
  }

  for (const c of [CASES[0]!, CASES[1]!, CASES[2]!, CASES[3]!]) {
    it(`undoes crop, downscale and z pad/crop: ${c.name}`, () => {
      const { image, label } = makeCase(c, 1);
      const cube = seedPresetCube(
        { data: image, shape: c.shape },
        { data: label, shape: c.shape },
        AFFINE,
        config(c),
      );
      const ref = seedReference(
        refVolume(image, c.shape),
        refVolume(label, c.shape),
        c.target,
        c.factor,
        c.cube,
      );
      const back = labelToSourceGrid(cube.label, cube.geometry);
      expect(Array.from(back)).toEqual(
        Array.from(expectedBack(c, ref.downscaledLabel, ref.start, cube.shape)),
      );
      const whole = seedPresetWhole(
        { data: image, shape: c.shape },
        { data: label, shape: c.shape },
        AFFINE,
        config(c),
      );
      const wholeBack = labelToSourceGrid(whole.label!, whole.geometry);
      expect(Array.from(wholeBack)).toEqual(
        Array.from(expectedBack(c, ref.downscaledLabel, [0, 0, 0], whole.shape)),
      );
    });
  }

  it('outputAffine places output voxel centres at the centre of their source blocks', () => {
    const c = CASES[0]!;
    const { image, label } = makeCase(c, 1);
    const cube = seedPresetCube(
      { data: image, shape: c.shape },
      { data: label, shape: c.shape },
      AFFINE,
      config(c),
    );
    const start = cube.geometry.cropStart!;
    const plan = planSliceCount(c.shape[2], c.target);
    const source = [2 * start[0] + 0.5, 2 * start[1] + 0.5, 2 * start[2] + 0.5 - plan.padBefore, 1];
    const world = AFFINE.slice(0, 3).map((row) => row.reduce((s, v, i) => s + v * source[i]!, 0));
    cube.geometry.outputAffine.slice(0, 3).forEach((row, r) => expect(row[3]).toBeCloseTo(world[r]!, 9));
    expect(cube.geometry.outputAffine[0]![0]).toBeCloseTo(-1.4, 9);
    expect(cube.geometry.outputAffine[2]![2]).toBeCloseTo(5, 9);
  });

  it('prepareWholeVolume reads a volume object and refuses 2-D images with a clear error', async () => {
    const c = CASES[0]!;
    const { image } = makeCase(c, 1);
    const volume = {
      file: 'volume-9.nii.gz',
      shape: [...c.shape],
      data: image,
      dataIsScaled: false,
      sclSlope: 1,
      sclInter: 0,
      affine: AFFINE,
    } as unknown as NiftiVolume;
    const whole = await prepareWholeVolume(volume, config(c));
    expect(whole.shape).toEqual([6, 5, 4]);
    const flat = { ...volume, shape: [12, 50], file: 'volume-10.nii.gz' } as NiftiVolume;
    await expect(prepareWholeVolume(flat, config(c))).rejects.toThrow(
      /volume-10\.nii\.gz: 2-D image \(shape 12×50\); need a 3-D volume/,
    );
  });
});
