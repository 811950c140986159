import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CounterRng } from '@lits-ddp/counter-rng';
import {
  affineToQform,
  orientationCode,
  qformToAffine,
  readNifti,
  readNiftiHeader,
  writeNifti,
  type NiftiData,
  type NiftiTransform,
} from '../src/index.js';
import { tempDir } from './test-environment.js';

const tmp = tempDir('roundtrip');
afterAll(tmp.cleanup);

const rng = CounterRng.derive('lits-data-tests', 'roundtrip');
const shape = [7, 5, 3];
const count = 7 * 5 * 3;

const arrays: Array<[string, () => NiftiData]> = [
  ['uint8', () => Uint8Array.from({ length: count }, () => rng.int(256))],
  ['int8', () => Int8Array.from({ length: count }, () => rng.int(256) - 128)],
  ['int16', () => Int16Array.from({ length: count }, () => rng.int(65536) - 32768)],
  ['uint16', () => Uint16Array.from({ length: count }, () => rng.int(65536))],
  ['int32', () => Int32Array.from({ length: count }, () => rng.uint32() | 0)],
  ['uint32', () => Uint32Array.from({ length: count }, () => rng.uint32())],
  ['float32', () => Float32Array.from({ length: count }, () => rng.normal() * 1000)],
  ['float64', () => Float64Array.from({ length: count }, () => rng.normal() * 1e6)],
];

const oblique: NiftiTransform = {
  pixdim: [-1, 0.75, 0.8, 2.5, 1, 1, 1, 1],
  qformCode: 1,
  sformCode: 2,
  quaternion: { b: 0.1, c: -0.2, d: 0.3, qx: -90.5, qy: 12.25, qz: 40, qfac: -1 },
  sform: [
    [-0.7, 0.1, 0.05, 100.5],
    [0.12, 0.78, -0.3, -20],
    [0.01, 0.25, 2.4, -300.125],
  ],
  xyztUnits: 10,
  dimInfo: 57,
};

describe('writeNifti → readNifti round trip', () => {
  for (const [name, make] of arrays) {
    for (const byteOrder of ['little', 'big'] as const) {
      for (const ext of ['nii', 'nii.gz']) {
        it(`${name}, ${byteOrder}-endian, .${ext}: data and geometry are exact`, async () => {
          const data = make();
          const path = join(tmp.dir, `${name}-${byteOrder}.${ext}`);
          await writeNifti(
            path,
            { shape, data, transform: oblique, description: 'round trip' },
            { byteOrder },
          );
          const back = await readNifti(path, { native: true });
          expect(back.datatype.name).toBe(name);
          expect(back.byteOrder).toBe(byteOrder);
          expect(back.shape).toEqual(shape);
          expect(back.data.constructor).toBe(data.constructor);
          expect(Array.from(back.data)).toEqual(Array.from(data));
          expect(back.transform.qformCode).toBe(1);
          expect(back.transform.sformCode).toBe(2);
          expect(back.transform.xyztUnits).toBe(10);
          expect(back.transform.dimInfo).toBe(57);
          expect(back.transform.pixdim).toEqual(oblique.pixdim.map((v) => Math.fround(v)));
          expect(back.transform.sform).toEqual(oblique.sform.map((r) => r.map((v) => Math.fround(v))));
          const q = back.transform.quaternion;
          expect([q.b, q.c, q.d, q.qx, q.qy, q.qz, q.qfac]).toEqual(
            [0.1, -0.2, 0.3, -90.5, 12.25, 40, -1].map((v) => Math.fround(v)),
          );
          expect(back.description).toBe('round trip');
          // Writing what we read gives the same bytes again.
          const again = join(tmp.dir, `again-${name}-${byteOrder}.${ext}`);
          await writeNifti(again, back, { byteOrder });
          const reread = await readNifti(again, { native: true });
          expect(Array.from(reread.data)).toEqual(Array.from(data));
          expect(reread.affine).toEqual(back.affine);
        });
      }
    }
  }

  it('a mask written with a scaled source volume keeps the geometry but not the scaling', async () => {
    const source = join(tmp.dir, 'scaled.nii.gz');
    const raw = Int16Array.from({ length: count }, (_, i) => i - 50);
    await writeNifti(source, {
      shape,
      data: raw,
      transform: oblique,
      sclSlope: 0.5,
      sclInter: 10,
      dataIsScaled: false,
    });
    const scaled = await readNifti(source);
    expect(scaled.sclSlope).toBe(0.5);
    expect(Array.from(scaled.data.subarray(0, 3))).toEqual([-15, -14.5, -14]);
    const native = await readNifti(source, { native: true });
    expect(native.dataIsScaled).toBe(false);
    const mask = join(tmp.dir, 'mask.nii.gz');
    await writeNifti(mask, { ...scaled, data: Uint8Array.from({ length: count }, (_, i) => i % 3) });
    const back = await readNifti(mask, { native: true });
    expect([back.sclSlope, back.sclInter]).toEqual([1, 0]);
    expect(back.affine).toEqual(scaled.affine);
    expect(back.datatype.name).toBe('uint8');
    // A native volume written back keeps its slope/intercept, so it reads to the same scaled values.
    const copy = join(tmp.dir, 'copy.nii');
    await writeNifti(copy, native);
    expect(Array.from((await readNifti(copy)).data)).toEqual(Array.from(scaled.data));
  });

  it('without a transform the affine is written as sform and qform, and reads back the same', async () => {
    const affine = [
      [-0.7, 0, 0, 180],
      [0, -0.7, 0, 179.3],
      [0, 0, 2.5, -400],
      [0, 0, 0, 1],
    ];
    const path = join(tmp.dir, 'affine-only.nii.gz');
    await writeNifti(path, { shape, data: new Uint8Array(count), affine });
    const v = await readNiftiHeader(path);
    expect(v.orientation).toBe('LPS');
    expect(v.transform.sformCode).toBe(1);
    expect(v.transform.qformCode).toBe(1);
    expect(v.spacing.map((s) => Number(s.toFixed(5)))).toEqual([0.7, 0.7, 2.5]);
    const fromQform = qformToAffine(v.transform.quaternion, v.transform.pixdim);
    fromQform.forEach((row, r) => row.forEach((x, c) => expect(x).toBeCloseTo(affine[r]![c]!, 4)));
  });

  it('affineToQform inverts qformToAffine for random rotations, with and without a reflection', () => {
    const q = CounterRng.derive('lits-data-tests', 'quaternions');
    for (let i = 0; i < 50; i++) {
      const v = [q.normal(), q.normal(), q.normal(), q.normal()];
      const n = Math.hypot(...v) * (v[0]! < 0 ? -1 : 1);
      const quaternion = {
        b: v[1]! / n,
        c: v[2]! / n,
        d: v[3]! / n,
        qx: q.uniform(-200, 200),
        qy: 3,
        qz: -7,
        qfac: i % 2 ? -1 : 1,
      };
      const pixdim = [quaternion.qfac, q.uniform(0.3, 3), q.uniform(0.3, 3), q.uniform(0.3, 5)];
      const affine = qformToAffine(quaternion, pixdim);
      const back = affineToQform(affine);
      const again = qformToAffine(back.quaternion, [back.quaternion.qfac, ...back.pixdim]);
      again.forEach((row, r) => row.forEach((x, c) => expect(x).toBeCloseTo(affine[r]![c]!, 9)));
      expect(orientationCode(again)).toBe(orientationCode(affine));
    }
  });

  it('reads .hdr/.img pairs, gzipped or not, from either file', async () => {
    const data = Int16Array.from({ length: count }, (_, i) => 3 * i - 100);
    const single = join(tmp.dir, 'for-pair.nii');
    await writeNifti(single, { shape, data, transform: oblique });
    const bytes = readFileSync(single);
    const header = Buffer.from(bytes.subarray(0, 348));
    header.write('ni1\0', 344, 'latin1');
    header.writeFloatLE(0, 108); // vox_offset 0 in the .img
    const voxels = bytes.subarray(352);
    writeFileSync(join(tmp.dir, 'pair.hdr'), header);
    writeFileSync(join(tmp.dir, 'pair.img'), voxels);
    writeFileSync(join(tmp.dir, 'gzpair.hdr.gz'), gzipSync(header));
    writeFileSync(join(tmp.dir, 'gzpair.img.gz'), gzipSync(voxels));
    for (const name of ['pair.hdr', 'pair.img', 'gzpair.hdr.gz', 'gzpair.img.gz']) {
      const v = await readNifti(join(tmp.dir, name), { native: true });
      expect(v.format, name).toBe('nifti1');
      expect(Array.from(v.data), name).toEqual(Array.from(data));
      expect(v.transform.sform, name).toEqual(oblique.sform.map((r) => r.map((x) => Math.fround(x))));
    }
    const h = await readNiftiHeader(join(tmp.dir, 'pair.hdr'));
    expect(h.imageFile).toMatch(/pair\.img$/);
  });

  it('rejects datatypes outside the eight we support, naming the file and the type', async () => {
    const path = join(tmp.dir, 'complex.nii');
    await writeNifti(path, { shape, data: new Float64Array(count), transform: oblique });
    const bytes = readFileSync(path);
    bytes.writeInt16LE(32, 70); // datatype complex64
    bytes.writeInt16LE(64, 72); // bitpix
    writeFileSync(path, bytes);
    await expect(readNifti(path)).rejects.toThrow(
      /complex\.nii: datatype 32 \(complex64\) is not supported; supported: uint8, int16, int32, float32, float64, int8, uint16, uint32/,
    );
    bytes.writeInt16LE(4, 70); // int16 with a 64-bit bitpix
    writeFileSync(path, bytes);
    await expect(readNiftiHeader(path)).rejects.toThrow(
      /complex\.nii: bitpix 64 does not match datatype int16/,
    );
  });

  it('the writer rejects data that does not fit the shape, naming the file', async () => {
    await expect(
      writeNifti(join(tmp.dir, 'bad.nii'), { shape: [2, 2, 2], data: new Uint8Array(7) }),
    ).rejects.toThrow(/bad\.nii: shape 2×2×2 needs 8 voxels, data has 7/);
  });
});
