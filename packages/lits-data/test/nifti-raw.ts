import { readFileSync, readdirSync } from 'node:fs';
import { endianness } from 'node:os';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { NiftiData } from '../src/index.js';

/**
 * Raw byte access to the conformance files, written for the tests and sharing no code with the reader under test, so
 * that byte order, magic, extensions and stored voxel bytes are checked against the file itself, not against what the
 * reader detected.
 */

/** The file's bytes, inflated when it starts with the gzip magic. */
export function rawFileBytes(path: string): Buffer {
  const bytes = readFileSync(path);
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
}

export interface RawHeader {
  sizeofHdr: number;
  byteOrder: 'little' | 'big';
  magic: string;
  /** The 80 descrip bytes up to the last non-NUL byte (embedded NULs kept). */
  descrip: string;
}

/** sizeof_hdr read both ways: whichever byte order gives 348 or 540 is the file's. */
export function rawHeader(bytes: Buffer): RawHeader {
  const little = bytes.readInt32LE(0);
  const big = bytes.readInt32BE(0);
  const byteOrder = little === 348 || little === 540 ? 'little' : 'big';
  const sizeofHdr = byteOrder === 'little' ? little : big;
  if (sizeofHdr !== 348 && sizeofHdr !== 540) throw new Error(`sizeof_hdr is ${little} / ${big}`);
  const nifti2 = sizeofHdr === 540;
  const magic = bytes.subarray(nifti2 ? 4 : 344, nifti2 ? 7 : 347).toString('latin1');
  const descripAt = nifti2 ? 240 : 148;
  const descrip = bytes
    .subarray(descripAt, descripAt + 80)
    .toString('latin1')
    .replace(/\0+$/, '');
  return { sizeofHdr, byteOrder, magic: magic.replace(/\0/g, ''), descrip };
}

/** The extensions (esize, ecode) between the header and `voxOffset` (EXPECTED's value, not the reader's). */
export function rawExtensions(bytes: Buffer, voxOffset: number): Array<{ esize: number; ecode: number }> {
  const { sizeofHdr, byteOrder } = rawHeader(bytes);
  const int32 = (at: number): number =>
    byteOrder === 'little' ? bytes.readInt32LE(at) : bytes.readInt32BE(at);
  const found: Array<{ esize: number; ecode: number }> = [];
  if (bytes.length < sizeofHdr + 4 || bytes[sizeofHdr] === 0) return found;
  for (let at = sizeofHdr + 4; at + 8 <= voxOffset;) {
    const esize = int32(at);
    if (esize < 8) break;
    found.push({ esize, ecode: int32(at + 4) });
    at += esize;
  }
  return found;
}

/** The voxel values' bytes written in `order`, as they would sit in a file of that byte order. */
export function encodeStored(data: NiftiData, order: 'little' | 'big'): Buffer {
  if (endianness() !== 'LE') throw new Error('these tests assume a little-endian host');
  const bytes = Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (order === 'big' && data.BYTES_PER_ELEMENT > 1) {
    const width = data.BYTES_PER_ELEMENT;
    for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  }
  return bytes;
}

/** Every file under `dir`, as paths relative to it with '/' separators. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(relative(dir, path).split('\\').join('/'));
    }
  };
  walk(dir);
  return out.sort();
}
