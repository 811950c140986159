import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { qformToAffine, readNifti, readNiftiHeader, scalingOf, type NiftiHeaderInfo } from '../src/index.js';
import { NIBABEL_ROWS } from './nifti-conformance-nibabel.js';
import { NIFTI_READER_JS_ROWS } from './nifti-conformance-nifti-reader-js.js';
import { NOT_ROWS, type ConformanceRow, type Written } from './nifti-conformance-table.js';
import { encodeStored, listFiles, rawExtensions, rawFileBytes, rawHeader } from './nifti-raw.js';
import { conformanceDir } from './test-environment.js';

// What EXPECTED.md states that the reader does not expose, so no test checks it: cal_min/cal_max (except through
// functional.nii's scaled range), slice_end, intent_code, eol_check, nibabel-only results (get_base_affine,
// as_closest_canonical, conform) and the header-print fields nibabel resets.

const dir = conformanceDir();
const file = (name: string): string => join(dir ?? '', name);
const CONFORMANCE = [...NIBABEL_ROWS, ...NIFTI_READER_JS_ROWS];
const BYTES_PER_VOXEL: Record<number, number> = { 2: 1, 4: 2, 16: 4 };

/** Half a unit in the last digit EXPECTED.md writes; 0 for integers. */
function writtenTolerance(value: number): number {
  if (Number.isInteger(value)) return 0;
  const [mantissa, exponent] = String(value).toLowerCase().split('e');
  const decimals = (mantissa!.split('.')[1] ?? '').length - Number(exponent ?? 0);
  return 0.5 * 10 ** -decimals;
}

/**
 * `actual` matches what EXPECTED.md writes: to its digits (at least `minTolerance`, for lists rounded to fixed
 * places), or as the shortest decimal that identifies a float32 (how numpy prints float32 data).
 */
function expectWritten(actual: number, written: Written, label: string, minTolerance = 0): void {
  const [value, within] =
    typeof written === 'number'
      ? [written, Math.max(writtenTolerance(written), minTolerance)]
      : [written.near, written.within];
  if (Number.isNaN(value)) return void expect(actual, label).toBeNaN();
  if (within === 0) return void expect(actual + 0, label).toBe(value + 0);
  if (typeof written === 'number' && Math.fround(value) === actual) return;
  expect(Math.abs(actual - value), `${label}: ${actual} vs ${value}`).toBeLessThanOrEqual(
    within * (1 + 1e-9),
  );
}

function expectAllWritten(
  actual: readonly number[],
  written: readonly Written[],
  label: string,
  min = 0,
): void {
  expect(actual.length, label).toBe(written.length);
  written.forEach((w, i) => expectWritten(actual[i]!, w, `${label}[${i}]`, min));
}

/** value at a NIfTI index (x fastest). */
function at(v: { shape: number[]; data: ArrayLike<number> }, index: number[]): number {
  let offset = 0;
  let stride = 1;
  index.forEach((i, a) => {
    offset += i * stride;
    stride *= v.shape[a]!;
  });
  return v.data[offset]!;
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

/** world = affine · [i, j, k, 1]. */
const apply = (affine: number[][], ijk: number[]): number[] =>
  affine.slice(0, 3).map((row) => row[0]! * ijk[0]! + row[1]! * ijk[1]! + row[2]! * ijk[2]! + row[3]!);

function expectHeader(h: NiftiHeaderInfo, row: ConformanceRow, sizeofHdr: number): void {
  const f = row.file;
  expect(h.format, f).toBe(row.format);
  expect(h.byteOrder, f).toBe(row.endian);
  expect(h.shape, f).toEqual(row.shape);
  expect(h.datatype, f).toEqual(row.datatype);
  expectAllWritten(h.transform.pixdim.slice(1, 5), row.pixdim, `${f} pixdim`);
  expect(h.spacing, f).toEqual(h.transform.pixdim.slice(1, row.shape.length + 1));
  expect(h.voxOffset, f).toBe(row.voxOffset);
  expectAllWritten([h.sclSlope, h.sclInter], row.scl, `${f} scl`);
  expect([h.transform.qformCode, h.transform.sformCode], f).toEqual(row.ours?.codes ?? row.codes);
  if (row.srow) expectAllWritten(h.transform.sform.flat(), row.srow.flat(), `${f} srow`, 5e-5);
  if (row.quatern) {
    const q = h.transform.quaternion;
    const stored = [q.b, q.c, q.d, q.qx, q.qy, q.qz, h.transform.pixdim[0]!];
    expectAllWritten(stored, row.quatern, `${f} quatern`, 5e-5);
  }
  const expectedSource = row.codes[1] > 0 ? 'sform' : row.codes[0] > 0 ? 'qform' : 'pixdim';
  expect(h.affineSource, f).toBe(row.ours?.affineSource ?? expectedSource);
  if (row.ours?.affine) expect(h.affine, f).toEqual(row.ours.affine);
  else if (expectedSource === 'sform') {
    expectAllWritten(h.affine.slice(0, 3).flat(), row.srow!.flat(), `${f} affine`, 5e-5);
    expect(h.affine[3], f).toEqual([0, 0, 0, 1]);
  }
  const description = row.ours?.description ?? row.description;
  if (description !== undefined) expect(h.description, f).toBe(description);
  const extensions = row.extensions ?? { count: 0 };
  expect(h.extensionCount, f).toBe(extensions.count);
  if (extensions.esize) {
    // The reader reports the count; the sizes are what puts the voxels at vox_offset.
    const esizes = extensions.esize.reduce((a, b) => a + b, 0);
    expect(h.voxOffset, f).toBe(sizeofHdr + 4 + esizes);
  }
}

describe.skipIf(!dir)('NIfTI conformance (../shared/testdata/nifti-conformance, EXPECTED.md)', () => {
  it('the table of expectations has a row for every file in the folder', () => {
    const covered = [
      ...CONFORMANCE.map((r) => r.file),
      ...CONFORMANCE.flatMap((r) => (r.imageFile ? [r.imageFile] : [])),
      ...NOT_ROWS,
    ].sort();
    expect(listFiles(dir!)).toEqual(covered);
  });

  for (const row of CONFORMANCE)
    describe(`${row.file} (EXPECTED.md ${row.section})`, () => {
      it('file identity, byte order read raw, magic, shape, datatype, pixdim, vox_offset, scaling, transforms, extensions', async () => {
        const path = file(row.file);
        const bytes = readFileSync(path);
        expect(bytes.length).toBe(row.bytes);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(row.sha256);
        const raw = rawFileBytes(path);
        const rh = rawHeader(raw);
        // Independent of the reader: the byte order that makes sizeof_hdr 348 or 540.
        expect(rh.byteOrder).toBe(row.endian);
        expect(rh.sizeofHdr).toBe(row.format === 'nifti2' ? 540 : 348);
        expect(rh.magic).toBe(row.magic);
        if (row.extensions?.esize) {
          const found = rawExtensions(raw, row.voxOffset);
          expect(found.map((e) => e.esize)).toEqual(row.extensions.esize);
          expect(found.map((e) => e.ecode)).toEqual(row.extensions.ecode);
        }
        const h = await readNiftiHeader(path, { checkImage: !row.headerOnly });
        expectHeader(h, row, rh.sizeofHdr);
        if (!row.headerOnly) expect(h.imageFile).toBe(row.imageFile ? file(row.imageFile) : path);
      });

      it('voxels: stored bytes and CRC-32, min/max/NaN, v[0], named values, scaling applied or not', async () => {
        const path = file(row.file);
        if (row.headerOnly) {
          // Header-only files are read with readNiftiHeader(path, { checkImage: false }); readNifti names the gap.
          await expect(readNifti(path)).rejects.toThrow(/image file missing for header/);
          return;
        }
        const v = await readNifti(path, { native: true });
        const { data, dataIsScaled, ...header } = v;
        expect(header).toEqual(await readNiftiHeader(path));
        expect(dataIsScaled).toBe(false);
        const count = row.shape.reduce((a, b) => a * b, 1);
        expect(data.length).toBe(count);
        // The file's voxel bytes at EXPECTED's vox_offset; our values written back in EXPECTED's byte order must give
        // exactly these bytes (so a misdetected byte order cannot pass).
        const image = rawFileBytes(row.imageFile ? file(row.imageFile) : path);
        const width = BYTES_PER_VOXEL[row.datatype.code]!;
        const stored = image.subarray(row.voxOffset, row.voxOffset + count * width);
        expect(stored.length).toBe(count * width);
        expect(crc32(stored)).toBe(row.crc);
        expect(Buffer.compare(encodeStored(data, row.endian), stored)).toBe(0);
        const s = stats(data);
        expectWritten(s.min, row.storedRange![0], 'stored min');
        expectWritten(s.max, row.storedRange![1], 'stored max');
        expect(s.nan).toBe(row.nan);
        expectWritten(data[0]!, row.v0!, 'v[0]');
        for (const value of row.values ?? [])
          if (value.stored !== undefined) expectWritten(at(v, value.at), value.stored, `stored ${value.at}`);

        const scaling = scalingOf(v);
        const [slope, inter] = row.scl.map((w) => (typeof w === 'number' ? w : w.near));
        // scl_slope 0 means "not scaled"; so does 1/0.
        expect(scaling === null).toBe(slope === 0 || (slope === 1 && inter === 0));
        const scaled = await readNifti(path);
        expect(scaled.dataIsScaled).toBe(true);
        let mismatches = 0;
        for (let i = 0; i < count; i++) {
          const want = scaling ? Math.fround(data[i]! * scaling.slope + scaling.inter) : data[i]!;
          if (!Object.is(scaled.data[i], Math.fround(want))) mismatches++;
        }
        expect(mismatches).toBe(0);
        if (row.scaledRange) {
          const ss = stats(scaled.data);
          expectWritten(ss.min, row.scaledRange[0], 'scaled min');
          expect(ss.max).toBe(row.ours?.scaledMax ?? row.scaledRange[1]);
        }
        for (const value of row.values ?? [])
          if (value.scaled !== undefined)
            expectWritten(at(scaled, value.at), value.scaled, `scaled ${value.at}`);
      });
    });

  it('example4d.nii.gz: zooms, units, dim_info, quaternion, qform = sform (2 dp), LAS, nib-ls counts, extensions', async () => {
    // EXPECTED.md ### example4d.nii.gz ([upstream] header print, nib-ls, test_nifti1.py extensions; [computed]).
    const path = file('example4d.nii.gz');
    const v = await readNifti(path, { native: true });
    expectAllWritten(v.spacing, [2.0, 2.0, 2.199999, 2000.0], 'zooms');
    expect(v.transform.xyztUnits).toBe(10);
    expect(v.transform.dimInfo).toBe(57);
    expect(v.transform.pixdim).toEqual([-1, 2, 2, v.spacing[2], 2000, 1, 1, 1]);
    const q = v.transform.quaternion;
    const quatern = [q.b, q.c, q.d, q.qx, q.qy, q.qz];
    expectAllWritten(quatern.slice(0, 3), [-1.945e-26, -0.996708512306, -0.081068739295], 'quatern_b..d');
    expectAllWritten(quatern.slice(3), [117.855102539, -35.7229423523, -7.24879837036], 'qoffset');
    const qform = qformToAffine(q, v.transform.pixdim);
    qform.forEach((r, i) => r.forEach((x, j) => expect(Math.abs(x - v.affine[i]![j]!)).toBeLessThan(0.005)));
    expect(v.orientation).toBe('LAS');
    const counts = new Map<number, number>();
    for (const x of v.data) counts.set(x, (counts.get(x) ?? 0) + 1);
    expect(v.data.length).toBe(589824);
    expect(v.data.length - counts.get(0)!).toBe(229725);
    expect([0, 2, 3, 4, 5].map((k) => counts.get(k))).toEqual([360099, 3, 2, 1, 1]);
    expect(counts.size).toBe(1031);
    const nonZero = [...counts.keys()].filter((k) => k !== 0);
    expect([Math.min(...nonZero), Math.max(...nonZero)]).toEqual([2, 1162]);
    // test_nifti1.py: first content 'extcomment1'; sizes are multiples of 16.
    const raw = rawFileBytes(path);
    const ext = rawExtensions(raw, 416);
    expect(raw.subarray(352 + 8, 352 + 8 + 11).toString('latin1')).toBe('extcomment1');
    expect(raw.subarray(352 + 32 + 8, 352 + 32 + 8 + 15).toString('latin1')).toBe('extlongcomment2');
    ext.forEach((e) => expect(e.esize % 16).toBe(0));
  });

  it('example_nifti2.nii.gz: affine identical to example4d, all 15,360 voxels non-zero', async () => {
    // EXPECTED.md ### example_nifti2.nii.gz ([computed]; nib-ls "[15360] [46, 7.6e+02]").
    const two = await readNifti(file('example_nifti2.nii.gz'), { native: true });
    const one = await readNiftiHeader(file('example4d.nii.gz'));
    expect(two.affine).toEqual(one.affine);
    expect(two.spacing).toEqual(one.spacing);
    expect(two.data.length).toBe(15360);
    expect(two.data.every((x) => x !== 0)).toBe(true);
  });

  it('resampled_anat_moved.nii has functional.nii’s affine; row_major.dconn.nii holds 100 values', async () => {
    // EXPECTED.md ### reoriented_anat_moved.nii / resampled_anat_moved.nii and ### row_major.dconn.nii.
    const resampled = await readNiftiHeader(file('resampled_anat_moved.nii'));
    const functional = await readNiftiHeader(file('functional.nii'));
    expect(resampled.affine).toEqual(functional.affine);
    const dconn = await readNifti(file('row_major.dconn.nii'));
    expect(dconn.data.length).toBe(100);
  });

  it('standard.nii.gz: 30 voxels of 255 and 110 of 0; the first non-zero voxels in (i, j, k) order', async () => {
    // EXPECTED.md ### standard.nii.gz: "First non-zero voxels (i,j,k): (0,0,1), (0,1,0), (0,1,4), (0,1,5), (0,4,5)…".
    const v = await readNifti(file('standard.nii.gz'), { native: true });
    expect(v.data.filter((x) => x === 255).length).toBe(30);
    expect(v.data.filter((x) => x === 0).length).toBe(110);
    const first: number[][] = [];
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 5; j++)
        for (let k = 0; k < 7; k++) if (at(v, [i, j, k]) !== 0) first.push([i, j, k]);
    expect(first.slice(0, 5)).toEqual([
      [0, 0, 1],
      [0, 1, 0],
      [0, 1, 4],
      [0, 1, 5],
      [0, 4, 5],
    ]);
  });

  it('someones_epi / someones_anatomy: the centre voxel in world space and in anatomy voxels', async () => {
    // EXPECTED.md ### someones_epi.nii.gz / someones_anatomy.nii.gz (coordinate_systems.rst:726-758, 779).
    const epi = await readNiftiHeader(file('someones_epi.nii.gz'));
    const anat = await readNiftiHeader(file('someones_anatomy.nii.gz'));
    const world = apply(epi.affine, [26, 30, 16]);
    expectAllWritten(world, [0, -4.205, 8.453], 'epi centre in world', 5e-4);
    // inv(anat.affine) · world, with anat's affine diagonal (checked by its row).
    const voxel = [0, 1, 2].map((a) => (world[a]! - anat.affine[a]![3]!) / anat.affine[a]![a]!);
    expectAllWritten(voxel, [28.364, 31.562, 36.165], 'epi centre in anatomy voxels');
  });

  it('nifti-reader-js: image byte counts, big and little equal, the pair read through its .img, not-nifti.nii', async () => {
    // EXPECTED.md nifti-reader-js table ("image 18 bytes", "image 33,423,360 bytes", not-nifti "1024 B").
    const small = await readNifti(file('nifti-reader-js/5D_small.nii'), { native: true });
    expect(small.data.byteLength).toBe(18);
    const zeros = await readNiftiHeader(file('nifti-reader-js/5D_zeros.nii.gz'));
    expect(zeros.shape.reduce((a, b) => a * b, 1)).toBe(33423360);
    const big = await readNifti(file('nifti-reader-js/big.nii.gz'));
    const little = await readNifti(file('nifti-reader-js/little.nii.gz'));
    expect(big.data.length).toBe(86016);
    expect(Buffer.compare(encodeStored(big.data, 'little'), encodeStored(little.data, 'little'))).toBe(0);
    expect(big.affine).toEqual(little.affine);
    // qform with b=0, c=1, d=0 (180° about y) and qfac −1 on pixdim 4, 4, 6.
    const diagonal = [
      [-4, 0, 0, 0],
      [0, 4, 0, 0],
      [0, 0, 6, 0],
      [0, 0, 0, 1],
    ];
    expectAllWritten(big.affine.flat(), diagonal.flat(), 'big.nii.gz qform affine');
    const air = await readNifti(file('nifti-reader-js/air.img.gz'));
    expect(air.file).toBe(file('nifti-reader-js/air.img.gz'));
    expect(air.imageFile).toBe(file('nifti-reader-js/air.img.gz'));
    expect(air.orientation).toBe('AIR'); // "oblique sform (axes permuted)"
    const notNifti = file('nifti-reader-js/not-nifti.nii');
    expect(readFileSync(notNifti).length).toBe(1024);
    await expect(readNifti(notNifti)).rejects.toThrow(
      /not-nifti\.nii: not a NIfTI file \(sizeof_hdr is -?\d+, expected 348 or 540\)/,
    );
    await expect(readNiftiHeader(notNifti)).rejects.toThrow(/not-nifti\.nii: not a NIfTI file/);
  });

  describe('where we deliberately read a file differently from EXPECTED.md (README "Conformance files")', () => {
    for (const row of CONFORMANCE.filter((r) => r.ours)) {
      it(`${row.file}: ${row.ours!.why}`, async () => {
        const ours = row.ours!;
        const h = await readNiftiHeader(file(row.file), { checkImage: !row.headerOnly });
        if (ours.codes) {
          expect(ours.codes).not.toEqual(row.codes);
          expect([h.transform.qformCode, h.transform.sformCode]).toEqual(ours.codes);
        }
        if (ours.affineSource) expect(h.affineSource).toBe(ours.affineSource);
        if (ours.affine) expect(h.affine).toEqual(ours.affine);
        if (ours.description !== undefined) {
          expect(ours.description).not.toBe(row.description);
          expect(h.description).toBe(ours.description);
        }
        if (ours.scaledMax !== undefined) {
          expect(ours.scaledMax).not.toBe(row.scaledRange![1]);
          const scaled = await readNifti(file(row.file));
          expect(stats(scaled.data).max).toBe(ours.scaledMax);
        }
      });
    }

    it('analyze.hdr: the float in the scl_slope slot is applied as the slope (SPM’s reading)', async () => {
      const h = await readNiftiHeader(file('analyze.hdr'), { checkImage: false });
      expect(scalingOf(h)).toEqual({ slope: h.sclSlope, inter: 0 });
      expect(h.orientation).toBe('RAS'); // nibabel's x flip would make it LAS
    });

    it('example4d.nii.gz and example_nifti2.nii.gz: descrip bytes hold a NUL, which we drop', async () => {
      for (const name of ['example4d.nii.gz', 'example_nifti2.nii.gz']) {
        const raw = rawHeader(rawFileBytes(file(name))).descrip;
        expect(raw, name).toBe('FSL3.3\x00 v2.25 NIfTI-1 Single file format');
        expect((await readNiftiHeader(file(name))).description, name).toBe(raw.replace(/\0/g, ''));
      }
    });
  });
});
