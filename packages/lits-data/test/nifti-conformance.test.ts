import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readNifti, readNiftiHeader, scalingOf, type NiftiVolume } from '../src/index.js';
import { conformanceDir } from './test-environment.js';

const dir = conformanceDir();
const file = (name: string): string => join(dir ?? '', name);

/** value at a NIfTI index (x fastest). */
function at(v: NiftiVolume, ...index: number[]): number {
  let offset = 0;
  let stride = 1;
  index.forEach((i, a) => {
    offset += i * stride;
    stride *= v.shape[a]!;
  });
  return v.data[offset]!;
}

/** CRC-32 of the voxel bytes as stored in the file (swapped back to the file's byte order), like nifti-reader-js. */
function storedCrc(v: NiftiVolume): number {
  const bytes = Uint8Array.from(new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength));
  const width = v.data.BYTES_PER_ELEMENT;
  if (v.byteOrder === 'big' && width > 1)
    for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  return crc32(bytes);
}

function stats(data: ArrayLike<number>): { min: number; max: number; nan: number } {
  let min = Infinity;
  let max = -Infinity;
  let nan = 0;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (Number.isNaN(x)) nan++;
    else {
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
  }
  return { min, max, nan };
}

function expectAffine(actual: number[][], expected: number[][], digits = 4): void {
  expected.forEach((row, r) => row.forEach((v, c) => expect(actual[r]![c]!).toBeCloseTo(v, digits)));
}

describe.skipIf(!dir)('NIfTI conformance (../shared/testdata/nifti-conformance, EXPECTED.md)', () => {
  it('example4d.nii.gz: NIfTI-1 int16 4-D with two extensions, LAS sform', async () => {
    const v = await readNifti(file('example4d.nii.gz'), { native: true });
    expect(v.format).toBe('nifti1');
    expect(v.shape).toEqual([128, 96, 24, 2]);
    expect(v.datatype).toEqual({ code: 4, name: 'int16' });
    expect(v.byteOrder).toBe('little');
    expect(v.voxOffset).toBe(416);
    expect(v.extensionCount).toBe(2);
    expect([v.sclSlope, v.sclInter]).toEqual([1, 0]);
    expect(v.spacing.map((s) => Number(s.toFixed(4)))).toEqual([2, 2, 2.2, 2000]);
    expect(v.affineSource).toBe('sform');
    expectAffine(v.affine, [
      [-2, 0, 0, 117.8551],
      [0, 1.9737, -0.3555, -35.7229],
      [0, 0.3232, 2.1711, -7.2488],
      [0, 0, 0, 1],
    ]);
    expect(v.orientation).toBe('LAS');
    expect([60, 61, 62, 63, 64].map((x) => at(v, x, 48, 12, 0))).toEqual([430, 452, 361, 180, 265]);
    expect(at(v, 64, 48, 12, 1)).toBe(266);
    expect(stats(v.data)).toEqual({ min: 0, max: 1162, nan: 0 });
    expect(storedCrc(v)).toBe(1030030713);
    // nib-ls: 589824 voxels, 229725 of them non-zero; value counts 0:360099 2:3 3:2 4:1 5:1.
    const counts = new Map<number, number>();
    for (const x of v.data) counts.set(x, (counts.get(x) ?? 0) + 1);
    expect(v.data.length).toBe(589824);
    expect(v.data.length - counts.get(0)!).toBe(229725);
    expect([0, 2, 3, 4, 5].map((k) => counts.get(k))).toEqual([360099, 3, 2, 1, 1]);
  });

  it('example_nifti2.nii.gz: NIfTI-2 (540-byte header) crop of example4d', async () => {
    const v = await readNifti(file('example_nifti2.nii.gz'), { native: true });
    expect(v.format).toBe('nifti2');
    expect(v.shape).toEqual([32, 20, 12, 2]);
    expect(v.datatype.name).toBe('int16');
    expect(v.voxOffset).toBe(608);
    expect(v.extensionCount).toBe(2);
    expect(at(v, 0, 0, 0, 0)).toBe(424);
    expect(stats(v.data)).toEqual({ min: 46, max: 757, nan: 0 });
    expect(v.data.every((x) => x !== 0)).toBe(true);
    expect(storedCrc(v)).toBe(3146199124);
    expect(v.orientation).toBe('LAS');
  });

  it('anatomical.nii: big-endian int16, diagonal -2, 2, 2 affine', async () => {
    const v = await readNifti(file('anatomical.nii'), { native: true });
    expect(v.byteOrder).toBe('big');
    expect(v.shape).toEqual([33, 41, 25]);
    expect(v.datatype.name).toBe('int16');
    expectAffine(v.affine, [
      [-2, 0, 0, 32],
      [0, 2, 0, -40],
      [0, 0, 2, -16],
      [0, 0, 0, 1],
    ]);
    expect(at(v, 0, 0, 0)).toBe(10712);
    expect(at(v, 16, 20, 12)).toBe(11881);
    expect(stats(v.data)).toEqual({ min: -610, max: 30393, nan: 0 });
    expect(storedCrc(v)).toBe(3570325065);
  });

  it('functional.nii: int16 4-D with scl_slope/scl_inter; scaled range equals cal_min/cal_max', async () => {
    const native = await readNifti(file('functional.nii'), { native: true });
    expect(native.shape).toEqual([17, 21, 3, 20]);
    expect(native.sclSlope).toBeCloseTo(0.07540696859359741, 12);
    expect(native.sclInter).toBe(3100.76171875);
    expect(at(native, 0, 0, 0, 0)).toBe(11980);
    expect(stats(native.data)).toEqual({ min: -32768, max: 32767, nan: 0 });
    expect(storedCrc(native)).toBe(52220217);
    const scaled = await readNifti(file('functional.nii'));
    expect(scaled.dataIsScaled).toBe(true);
    expect(scaled.data[0]).toBeCloseTo(4004.1372, 3);
    const s = stats(scaled.data);
    expect(s.min).toBeCloseTo(629.826171875, 2);
    expect(s.max).toBeCloseTo(5571.62158203125, 2);
    expectAffine(scaled.affine, [
      [-4, 0, 0, 32],
      [0, 4, 0, -40],
      [0, 0, 8, 0],
      [0, 0, 0, 1],
    ]);
  });

  it('reoriented_anat_moved.nii and resampled_anat_moved.nii: big-endian float32, NaN voxels', async () => {
    const r = await readNifti(file('reoriented_anat_moved.nii'));
    expect(r.byteOrder).toBe('big');
    expect(r.datatype.name).toBe('float32');
    expect(r.shape).toEqual([21, 26, 22]);
    expect(at(r, 10, 13, 11)).toBeCloseTo(8117.2202, 3);
    const rs = stats(r.data);
    expect(rs.min).toBe(0);
    expect(rs.max).toBeCloseTo(21199.94, 1);
    expect(r.orientation).toBe('RAS');
    const m = await readNifti(file('resampled_anat_moved.nii'));
    expect(m.shape).toEqual([17, 21, 3]);
    const ms = stats(m.data);
    expect(ms.nan).toBe(153);
    expect(Number.isNaN(m.data[0])).toBe(true);
    expect(ms.min).toBeCloseTo(409.3, 1);
    expect(ms.max).toBeCloseTo(13361, 0);
    expect(storedCrc(m)).toBe(712088395);
  });

  it('row_major.dconn.nii: NIfTI-2/CIFTI-2 with 6 dimensions and a 1488-byte vox_offset', async () => {
    const v = await readNifti(file('row_major.dconn.nii'));
    expect(v.format).toBe('nifti2');
    expect(v.shape).toEqual([1, 1, 1, 1, 10, 10]);
    expect(v.voxOffset).toBe(1488);
    expect(v.data.length).toBe(100);
    expect(v.data[0]).toBeCloseTo(0.1621823012828827, 7);
    const s = stats(v.data);
    expect(s.min).toBeCloseTo(0.00463422, 6);
    expect(s.max).toBeCloseTo(0.996135, 6);
    expect(v.affineSource).toBe('pixdim');
    expect(storedCrc(v)).toBe(1002353685);
  });

  it('standard.nii.gz: the exact uint8 mask nibabel generates (30 voxels of 255)', async () => {
    const v = await readNifti(file('standard.nii.gz'), { native: true });
    expect(v.shape).toEqual([4, 5, 7]);
    expect(v.datatype.name).toBe('uint8');
    expect(v.data.filter((x) => x === 255).length).toBe(30);
    expect(v.data.filter((x) => x === 0).length).toBe(110);
    expect(at(v, 0, 0, 1)).toBe(255);
    expect(at(v, 0, 1, 0)).toBe(255);
    expect(at(v, 0, 1, 4)).toBe(255);
    expect(at(v, 0, 0, 0)).toBe(0);
    expect(v.transform.sformCode).toBe(2);
    expect(v.transform.qformCode).toBe(0);
    expectAffine(v.affine, [
      [1, 0, 0, 0],
      [0, 3, 0, 0],
      [0, 0, 2, 0],
      [0, 0, 0, 1],
    ]);
    expect(storedCrc(v)).toBe(1175199352);
  });

  it('someones_epi.nii.gz / someones_anatomy.nii.gz: uint8 with slope and intercept', async () => {
    const epi = await readNifti(file('someones_epi.nii.gz'));
    expect(epi.shape).toEqual([53, 61, 33]);
    expect(at(epi, 26, 30, 16)).toBeCloseTo(81.5492877960205, 4);
    expectAffine(
      epi.affine,
      [
        [3, 0, 0, -78],
        [0, 2.866, -0.887, -76],
        [0, 0.887, 2.866, -64],
        [0, 0, 0, 1],
      ],
      3,
    );
    // The affine applied to the centre voxel gives [0, -4.205, 8.453] (nibabel's coordinate_systems.rst).
    const centre = [26, 30, 16, 1];
    const world = epi.affine.slice(0, 3).map((row) => row.reduce((s, v, i) => s + v * centre[i]!, 0));
    expect(world[0]).toBeCloseTo(0, 3);
    expect(world[1]).toBeCloseTo(-4.205, 3);
    expect(world[2]).toBeCloseTo(8.453, 3);
    const anat = await readNifti(file('someones_anatomy.nii.gz'), { native: true });
    expect(anat.shape).toEqual([57, 67, 56]);
    expect(scalingOf(anat)?.slope).toBeCloseTo(0.35245904326438904, 12);
    expect(scalingOf(anat)?.inter).toBeCloseTo(6.678363800048828, 12);
    expect(storedCrc(anat)).toBe(968422326);
  });

  it('nifti1.hdr / nifti2.hdr / analyze.hdr: header-only files', async () => {
    for (const [name, format] of [
      ['nifti1.hdr', 'nifti1'],
      ['nifti2.hdr', 'nifti2'],
    ] as const) {
      const h = await readNiftiHeader(file(name), { checkImage: false });
      expect(h.format).toBe(format);
      expect(h.shape).toEqual([91, 109, 91]);
      expect(h.datatype.name).toBe('int16');
      expect(h.byteOrder).toBe('little');
      expect(h.transform.sformCode).toBe(4);
      expectAffine(h.affine, [
        [-2, 0, 0, 90],
        [0, 2, 0, -126],
        [0, 0, 2, -72],
        [0, 0, 0, 1],
      ]);
      await expect(readNifti(file(name))).rejects.toThrow(/image file missing for header/);
    }
    const a = await readNiftiHeader(file('analyze.hdr'), { checkImage: false });
    expect(a.format).toBe('analyze');
    expect(a.byteOrder).toBe('big');
    expect(a.shape).toEqual([91, 109, 91, 1]);
    expect(a.datatype.name).toBe('uint8');
    expect(a.sclSlope).toBeCloseTo(1715.04, 2);
    expect(a.transform.sformCode).toBe(0);
  });

  it('nifti-reader-js files: raw CRCs, dims, byte orders and slope 0', async () => {
    const cases: Array<[string, number[], number, 'little' | 'big']> = [
      ['nifti-reader-js/avg152T1_LR_nifti.nii', [91, 109, 91], 1033497386, 'big'],
      ['nifti-reader-js/avg152T1_LR_nifti.nii.gz', [91, 109, 91], 1033497386, 'big'],
      ['nifti-reader-js/avg152T1_LR_nifti2.nii.gz', [91, 109, 91], 471047545, 'little'],
      ['nifti-reader-js/big.nii.gz', [64, 64, 21], 3243691439, 'big'],
      ['nifti-reader-js/little.nii.gz', [64, 64, 21, 1], 4006845507, 'little'],
      ['nifti-reader-js/5D_small.nii', [1, 2, 3, 1, 3], 1168954819, 'little'],
      ['nifti-reader-js/air.hdr.gz', [79, 67, 64], 692149477, 'little'],
      ['nifti-reader-js/air2.hdr.gz', [79, 67, 64], 692149477, 'little'],
    ];
    for (const [name, shape, crc, order] of cases) {
      const v = await readNifti(file(name), { native: true });
      expect(v.shape, name).toEqual(shape);
      expect(v.byteOrder, name).toBe(order);
      expect(storedCrc(v), name).toBe(crc);
    }
    const avg = await readNifti(file('nifti-reader-js/avg152T1_LR_nifti.nii.gz'));
    expect(avg.sclSlope).toBe(0); // slope 0 means "not scaled"
    expect(at(avg, 45, 54, 45)).toBe(121);
    expect(at(avg, 0, 0, 0)).toBe(10);
    const air = await readNifti(file('nifti-reader-js/air.img.gz'));
    expect(air.file).toMatch(/air\.img\.gz$/);
    expect(air.imageFile).toMatch(/air\.img\.gz$/);
    expect(air.orientation).toBe('AIR');
    expect(stats(air.data).max).toBeCloseTo(92.5539, 3);
  });

  it('big.nii.gz and little.nii.gz read to identical values', async () => {
    const big = await readNifti(file('nifti-reader-js/big.nii.gz'));
    const little = await readNifti(file('nifti-reader-js/little.nii.gz'));
    expect(big.byteOrder).toBe('big');
    expect(little.byteOrder).toBe('little');
    expect(big.data.length).toBe(86016);
    const bytes = (v: NiftiVolume): Buffer =>
      Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);
    expect(Buffer.compare(bytes(big), bytes(little))).toBe(0);
    const s = stats(big.data);
    expect(s.min).toBeCloseTo(-8.710751, 5);
    expect(s.max).toBeCloseTo(18.582529, 5);
    expect(at(big, 32, 32, 10)).toBeCloseTo(-1.2852674, 6);
    expect(big.affineSource).toBe('qform');
    expect(big.orientation).toBe('LAS');
    expectAffine(big.affine, little.affine, 6);
  });

  it('5D_zeros.nii.gz (33.4 MB of zeros) and with_extension.nii.gz', async () => {
    const zeros = await readNifti(file('nifti-reader-js/5D_zeros.nii.gz'), { native: true });
    expect(zeros.shape).toEqual([256, 256, 170, 1, 3]);
    expect(zeros.data.byteLength).toBe(33423360);
    expect(storedCrc(zeros)).toBe(2980574675);
    const ext = await readNifti(file('nifti-reader-js/with_extension.nii.gz'), { native: true });
    expect(ext.extensionCount).toBe(1);
    expect(ext.voxOffset).toBe(736);
    expect(ext.byteOrder).toBe('big');
    expect(ext.shape).toEqual([161, 191, 151, 1]);
    expect(storedCrc(ext)).toBe(4256514273);
  });

  it('not-nifti.nii gets a clear error naming the file', async () => {
    await expect(readNifti(file('nifti-reader-js/not-nifti.nii'))).rejects.toThrow(
      /not-nifti\.nii: not a NIfTI file \(sizeof_hdr is -?\d+, expected 348 or 540\)/,
    );
    expect(readFileSync(file('nifti-reader-js/not-nifti.nii')).length).toBe(1024);
  });
});
