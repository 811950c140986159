import { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { errorMessage } from '@lits-ddp/errors';
import { LitsDataError } from '../errors.js';
import { datatypeByCode, type Datatype } from './datatypes.js';
import { orientationCode, qformToAffine, type Matrix4, type Quaternion } from './affine.js';

export type NiftiFormat = 'nifti1' | 'nifti2' | 'analyze';
export type ByteOrder = 'little' | 'big';

/** The header fields that place the voxels in space; `writeNifti` writes them back unchanged. */
export interface NiftiTransform {
  /** pixdim[0..7]; pixdim[0] is qfac. */
  pixdim: number[];
  qformCode: number;
  sformCode: number;
  quaternion: Quaternion;
  /** srow_x, srow_y, srow_z. */
  sform: number[][];
  xyztUnits: number;
  dimInfo: number;
}

/** Everything about a NIfTI image except its voxels. */
export interface NiftiHeaderInfo {
  /** The file that was asked for (the .hdr of a pair). */
  file: string;
  /** Where the voxels are (the .img of a pair). */
  imageFile: string;
  format: NiftiFormat;
  /** dim[1..dim[0]]. */
  shape: number[];
  /** pixdim[1..dim[0]]. */
  spacing: number[];
  /** Voxel (i,j,k) → world (x,y,z) mm, 4×4 row-major: sform if sform_code > 0, else qform, else pixdim. */
  affine: Matrix4;
  affineSource: 'sform' | 'qform' | 'pixdim';
  /** Axis codes such as "RAS" or "LPS". */
  orientation: string;
  datatype: Datatype;
  byteOrder: ByteOrder;
  /** As stored; a slope of 0 (or non-finite) means the data are not scaled. */
  sclSlope: number;
  sclInter: number;
  voxOffset: number;
  transform: NiftiTransform;
  description: string;
  extensionCount: number;
}

const NIFTI1_SIZE = 348;
const NIFTI2_SIZE = 540;

function sizeofHdr(bytes: Uint8Array): { size: number; littleEndian: boolean } | null {
  if (bytes.length < 4) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4);
  for (const littleEndian of [true, false]) {
    const size = view.getInt32(0, littleEndian);
    if (size === NIFTI1_SIZE || size === NIFTI2_SIZE) return { size, littleEndian };
  }
  return null;
}

/** How many header bytes to hand to `parseHeader`: the fixed header plus any extensions before the voxels. */
export function headerBytesNeeded(bytes: Uint8Array): number {
  const found = sizeofHdr(bytes);
  if (!found) return bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (found.size === NIFTI1_SIZE) {
    if (bytes.length < 112) return NIFTI1_SIZE + 4;
    return Math.max(NIFTI1_SIZE + 4, Math.floor(view.getFloat32(108, found.littleEndian)));
  }
  if (bytes.length < 176) return NIFTI2_SIZE + 4;
  return Math.max(NIFTI2_SIZE + 4, Number(view.getBigInt64(168, found.littleEndian)));
}

function magicAt(bytes: Uint8Array, offset: number): string {
  let s = '';
  for (let i = offset; i < offset + 3 && i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function describeNonNifti(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'empty file (0 bytes)';
  if (bytes.length < NIFTI1_SIZE)
    return `not a NIfTI file (${bytes.length} bytes, shorter than a 348-byte header)`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4);
  return `not a NIfTI file (sizeof_hdr is ${view.getInt32(0, true)}, expected 348 or 540)`;
}

/** Parses the header at the start of `bytes` (a whole .hdr, or at least the header + extensions of a .nii). */
export function parseHeader(bytes: Uint8Array, file: string, imageFile: string): NiftiHeaderInfo {
  const found = sizeofHdr(bytes);
  if (!found) throw new LitsDataError(file, describeNonNifti(bytes));
  const { size, littleEndian } = found;
  if (bytes.length < size)
    throw new LitsDataError(file, `header truncated: ${bytes.length} of ${size} bytes`);
  const magic = magicAt(bytes, size === NIFTI1_SIZE ? 344 : 4);
  let format: NiftiFormat;
  if (size === NIFTI2_SIZE) {
    if (magic !== 'n+2' && magic !== 'ni2')
      throw new LitsDataError(file, `not a NIfTI-2 file (magic '${magic}')`);
    format = 'nifti2';
  } else {
    format = magic === 'n+1' || magic === 'ni1' ? 'nifti1' : 'analyze';
  }
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  const h = format === 'nifti2' ? new NIFTI2() : new NIFTI1();
  try {
    h.readHeader(buffer);
  } catch (error) {
    throw new LitsDataError(file, `corrupt NIfTI header (${errorMessage(error)})`, { cause: error });
  }
  const view = new DataView(buffer);
  const dims = h.dims.map(Number);
  const rank = dims[0] ?? 0;
  if (!Number.isInteger(rank) || rank < 1 || rank > 7)
    throw new LitsDataError(file, `dim[0] is ${rank}; it must be 1..7`);
  const shape = dims.slice(1, rank + 1);
  shape.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1)
      throw new LitsDataError(file, `dim[${i + 1}] is ${n}; sizes must be ≥ 1`);
  });
  const datatype = datatypeByCode(h.datatypeCode, file);
  if (h.numBitsPerVoxel !== datatype.bytes * 8)
    throw new LitsDataError(file, `bitpix ${h.numBitsPerVoxel} does not match datatype ${datatype.name}`);

  const pixdim = h.pixDims.map(Number);
  const sform = readSrow(view, format, littleEndian);
  const analyze = format === 'analyze';
  const quaternion: Quaternion = {
    b: h.quatern_b,
    c: h.quatern_c,
    d: h.quatern_d,
    qx: h.qoffset_x,
    qy: h.qoffset_y,
    qz: h.qoffset_z,
    qfac: pixdim[0] === -1 ? -1 : 1,
  };
  const transform: NiftiTransform = {
    pixdim,
    qformCode: analyze ? 0 : h.qform_code,
    sformCode: analyze ? 0 : h.sform_code,
    quaternion,
    sform,
    xyztUnits: h.xyzt_units,
    dimInfo: analyze ? 0 : h.dim_info,
  };
  const { affine, affineSource } = bestAffine(transform);
  const voxOffset = Number(h.vox_offset);
  if (!Number.isFinite(voxOffset) || voxOffset < 0)
    throw new LitsDataError(file, `vox_offset ${voxOffset} is invalid`);
  return {
    file,
    imageFile,
    format,
    shape,
    spacing: pixdim.slice(1, rank + 1),
    affine,
    affineSource,
    orientation: orientationCode(affine),
    datatype: { code: datatype.code, name: datatype.name },
    byteOrder: littleEndian ? 'little' : 'big',
    sclSlope: h.scl_slope,
    sclInter: h.scl_inter,
    voxOffset: Math.floor(voxOffset),
    transform,
    description: h.description,
    extensionCount: h.extensions.length,
  };
}

function readSrow(view: DataView, format: NiftiFormat, littleEndian: boolean): number[][] {
  if (format === 'nifti2')
    return [0, 1, 2].map((r) =>
      [0, 1, 2, 3].map((c) => view.getFloat64(400 + (r * 4 + c) * 8, littleEndian)),
    );
  return [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => view.getFloat32(280 + (r * 4 + c) * 4, littleEndian)));
}

/** nibabel's choice: the sform when sform_code > 0, else the qform when qform_code > 0, else pixdim scaling. */
export function bestAffine(t: NiftiTransform): {
  affine: Matrix4;
  affineSource: NiftiHeaderInfo['affineSource'];
} {
  if (t.sformCode > 0)
    return { affine: [...t.sform.map((r) => r.slice()), [0, 0, 0, 1]], affineSource: 'sform' };
  if (t.qformCode > 0) return { affine: qformToAffine(t.quaternion, t.pixdim), affineSource: 'qform' };
  const d = (i: number): number => ((t.pixdim[i] ?? 0) > 0 ? t.pixdim[i]! : 1);
  return {
    affine: [
      [d(1), 0, 0, 0],
      [0, d(2), 0, 0],
      [0, 0, d(3), 0],
      [0, 0, 0, 1],
    ],
    affineSource: 'pixdim',
  };
}
