import { randomUUID } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { NIFTI1 } from 'nifti-reader-js';
import { errorMessage } from '@lits-ddp/errors';
import { LitsDataError } from '../errors.js';
import { datatypeOfArray, swapBytesInPlace, type NiftiData } from './datatypes.js';
import { affineToQform, type Matrix4 } from './affine.js';
import type { ByteOrder, NiftiTransform } from './header.js';

/** What `writeNifti` needs; a volume from `readNifti` fits as is (spread it and swap `data` to write a mask). */
export interface NiftiWriteInput {
  shape: readonly number[];
  /** NIfTI order (x fastest). The typed array decides the datatype. */
  data: NiftiData;
  /** Used when `transform` is absent: written as sform and qform (code 1, scanner). */
  affine?: Matrix4;
  /** qform, sform and pixdim to keep from a source image. */
  transform?: NiftiTransform;
  /** Written only when `dataIsScaled` is false (the data are stored values to be scaled on read). */
  sclSlope?: number;
  sclInter?: number;
  dataIsScaled?: boolean;
  description?: string;
}

export interface WriteNiftiOptions {
  /** Byte order on disk (default little). */
  byteOrder?: ByteOrder;
  /** zlib level for .gz names (default 6). */
  gzipLevel?: number;
}

const HEADER_BYTES = 352;
const NIFTI_UNITS_MM = 2;

function transformFromAffine(affine: Matrix4, rank: number): NiftiTransform {
  const { quaternion, pixdim } = affineToQform(affine);
  const full = [quaternion.qfac, ...pixdim, ...Array<number>(4).fill(1)];
  for (let i = rank + 1; i < 8; i++) full[i] = i < 4 ? full[i]! : 1;
  return {
    pixdim: full,
    qformCode: 1,
    sformCode: 1,
    quaternion,
    sform: affine.slice(0, 3).map((r) => r.slice()),
    xyztUnits: NIFTI_UNITS_MM,
    dimInfo: 0,
  };
}

/** The 352-byte NIfTI-1 header (348 + the empty extension flag), serialised by nifti-reader-js. */
export function niftiHeaderBytes(file: string, input: NiftiWriteInput, byteOrder: ByteOrder): Uint8Array {
  const rank = input.shape.length;
  if (rank < 1 || rank > 7)
    throw new LitsDataError(file, `cannot write a ${rank}-D image (NIfTI allows 1..7)`);
  const count = input.shape.reduce((a, b) => a * b, 1);
  if (count !== input.data.length)
    throw new LitsDataError(
      file,
      `shape ${input.shape.join('×')} needs ${count} voxels, data has ${input.data.length}`,
    );
  for (const n of input.shape)
    if (!Number.isInteger(n) || n < 1 || n > 32767)
      throw new LitsDataError(file, `dimension ${n} is outside NIfTI-1's 1..32767`);
  const spec = datatypeOfArray(input.data);
  const t = input.transform ?? transformFromAffine(input.affine ?? identityAffine(), rank);
  const h = new NIFTI1();
  h.littleEndian = byteOrder === 'little';
  h.dims = [rank, ...input.shape, ...Array<number>(7 - rank).fill(1)];
  h.pixDims = Array.from({ length: 8 }, (_, i) => t.pixdim[i] ?? (i === 0 ? 1 : 1));
  h.datatypeCode = spec.code;
  h.numBitsPerVoxel = spec.bytes * 8;
  h.vox_offset = HEADER_BYTES;
  const keepScaling = input.dataIsScaled === false;
  h.scl_slope = keepScaling ? (input.sclSlope ?? 1) : 1;
  h.scl_inter = keepScaling ? (input.sclInter ?? 0) : 0;
  h.xyzt_units = t.xyztUnits;
  h.dim_info = t.dimInfo;
  h.qform_code = t.qformCode;
  h.sform_code = t.sformCode;
  h.quatern_b = t.quaternion.b;
  h.quatern_c = t.quaternion.c;
  h.quatern_d = t.quaternion.d;
  h.qoffset_x = t.quaternion.qx;
  h.qoffset_y = t.quaternion.qy;
  h.qoffset_z = t.quaternion.qz;
  h.affine = [...t.sform.map((r) => r.slice()), [0, 0, 0, 1]];
  h.description = asciiField(input.description ?? 'lits-ddp', 79);
  h.aux_file = '';
  h.intent_name = '';
  h.magic = 'n+1';
  return new Uint8Array(h.toArrayBuffer(false));
}

function identityAffine(): Matrix4 {
  return [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ];
}

function asciiField(text: string, max: number): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

function voxelBytes(data: NiftiData, byteOrder: ByteOrder): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (byteOrder === 'little' || data.BYTES_PER_ELEMENT === 1) return bytes;
  const swapped = Uint8Array.from(bytes);
  swapBytesInPlace(swapped, data.BYTES_PER_ELEMENT);
  return swapped;
}

/**
 * Writes a single-file NIfTI-1 image, gzipped when the name ends in `.gz`. The write goes to a temporary file in the
 * same folder and is renamed into place, so readers never see a half-written file.
 */
export async function writeNifti(
  path: string,
  input: NiftiWriteInput,
  options: WriteNiftiOptions = {},
): Promise<void> {
  const byteOrder = options.byteOrder ?? 'little';
  const header = niftiHeaderBytes(path, input, byteOrder);
  const body = voxelBytes(input.data, byteOrder);
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomUUID()}.tmp`);
  try {
    if (/\.gz$/i.test(path)) {
      await pipeline(
        Readable.from([header, body], { objectMode: false }),
        createGzip({ level: options.gzipLevel ?? 6, chunkSize: 1 << 20 }),
        createWriteStream(temp),
      );
    } else {
      await writeFile(temp, Readable.from([header, body], { objectMode: false }));
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    if (error instanceof LitsDataError) throw error;
    throw new LitsDataError(path, `cannot write: ${errorMessage(error)}`, { cause: error });
  }
}
