/**
 * The shape of a row of the conformance table: EXPECTED.md of ../shared/testdata/nifti-conformance transcribed one
 * row per file (nifti-conformance-nibabel.ts, nifti-conformance-nifti-reader-js.ts). The per-file columns come from
 * its "[computed] header table (all files)", the srow/quatern list under it and the sha256 list; the file's own
 * section adds the values it names. `section` says where each row's extra facts come from. A number compares to the
 * digits EXPECTED.md writes (integers exactly); `near` is for values EXPECTED rounds further than that.
 *
 * `ours` records the deliberate differences (README "Conformance files we read differently"): the test checks that
 * we return `ours`, not EXPECTED's value, and `why` says why.
 */

export interface Near {
  near: number;
  within: number;
}
export type Written = number | Near;
export const near = (value: number, within: number): Near => ({ near: value, within });

export interface NamedValue {
  /** NIfTI index, x fastest. */
  at: number[];
  stored?: Written;
  /** After slope/intercept (our default float32 read). */
  scaled?: Written;
}

export interface Deviation {
  why: string;
  codes?: [number, number];
  affine?: number[][];
  affineSource?: 'sform' | 'qform' | 'pixdim';
  description?: string;
  scaledMax?: number;
}

export interface ConformanceRow {
  file: string;
  section: string;
  bytes: number;
  sha256: string;
  magic: 'n+1' | 'ni1' | 'n+2' | 'ni2' | '';
  format: 'nifti1' | 'nifti2' | 'analyze';
  endian: 'little' | 'big';
  shape: number[];
  datatype: { code: number; name: 'uint8' | 'int16' | 'float32' };
  /** pixdim[1..4]. */
  pixdim: Written[];
  voxOffset: number;
  /** scl_slope, scl_inter as stored. */
  scl: [Written, Written];
  /** qform_code, sform_code. */
  codes: [number, number];
  /** srow_x, srow_y, srow_z (4 dp) where sform_code > 0 (and analyze's garbage zeros). */
  srow?: number[][];
  /** qform b, c, d, qoffset x, y, z and pixdim[0] (qfac) where sform_code is 0. */
  quatern?: number[];
  description?: string;
  /** Each extension's esize and ecode, in file order; `count` alone where EXPECTED names no sizes. */
  extensions?: { count: number; esize?: number[]; ecode?: number[] };
  /** The .img of a pair. */
  imageFile?: string;
  /** Header only (no .img in the folder). */
  headerOnly?: true;
  /** CRC-32 (zlib) of the stored voxel bytes. */
  crc?: number;
  storedRange?: [Written, Written];
  /** Scaled range where EXPECTED states it (functional.nii: cal_min/cal_max). */
  scaledRange?: [Written, Written];
  nan?: number;
  /** v[0,..,0], stored. */
  v0?: number;
  values?: NamedValue[];
  ours?: Deviation;
}

export const I2 = { code: 4, name: 'int16' } as const;
export const U1 = { code: 2, name: 'uint8' } as const;
export const F4 = { code: 16, name: 'float32' } as const;
export const MNI_SROW = [
  [-2.0, 0.0, 0.0, 90.0],
  [0.0, 2.0, 0.0, -126.0],
  [0.0, 0.0, 2.0, -72.0],
];

/** Files in the folder that are no row's `file`: the pairs' .img halves, the negative test and EXPECTED.md itself. */
export const NOT_ROWS = ['EXPECTED.md', 'nifti-reader-js/not-nifti.nii'];
