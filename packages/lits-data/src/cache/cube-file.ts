import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { errorMessage } from '@lits-ddp/errors';
import { checkJson, decodeJson, JsonDecodeError } from '@lits-ddp/protocol';
import { fileSystemError, LitsDataError } from '../errors.js';
import { CubeFileHeaderSchema, CubeFormatField } from './cube-header-schema.js';
import type { Cube } from '../preprocess/case.js';
import type { PreprocessConfig } from '../preprocess/config.js';
import type { PreprocessGeometry } from '../preprocess/geometry.js';
import type { Shape3 } from '../preprocess/grid.js';

const MAGIC = 'LITSCUBE';
export const CUBE_FORMAT_VERSION = 1;

/** The JSON header of a cube file. */
export interface CubeFileHeader {
  format: number;
  caseId: number;
  shape: Shape3;
  config: PreprocessConfig;
  geometry: PreprocessGeometry;
  /** CRC-32 of the image bytes and of the label bytes (checked by `verifyCubeFile`, not by `loadCube`). */
  imageCrc32: number;
  labelCrc32: number;
}

if (endianness() !== 'LE') throw new Error('lits-data cube files are little-endian; this host is big-endian');

/** Cube file: "LITSCUBE", uint32 JSON length, JSON header, zero padding to 8 bytes, float32 image, uint8 label. */
function encode(cube: Cube, config: PreprocessConfig): Uint8Array[] {
  const imageBytes = new Uint8Array(cube.image.buffer, cube.image.byteOffset, cube.image.byteLength);
  const labelBytes = new Uint8Array(cube.label.buffer, cube.label.byteOffset, cube.label.byteLength);
  const header: CubeFileHeader = {
    format: CUBE_FORMAT_VERSION,
    caseId: cube.caseId,
    shape: cube.shape,
    config,
    geometry: cube.geometry,
    imageCrc32: crc32(imageBytes),
    labelCrc32: crc32(labelBytes),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const start = Buffer.alloc(12);
  start.write(MAGIC, 0, 'latin1');
  start.writeUInt32LE(json.length, 8);
  const pad = Buffer.alloc((8 - ((12 + json.length) % 8)) % 8);
  return [start, json, pad, imageBytes, labelBytes];
}

/** Writes atomically: a uniquely named temporary file in the same folder, then rename over the target. */
export async function writeCubeFile(file: string, cube: Cube, config: PreprocessConfig): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true });
  } catch (error) {
    throw fileSystemError(dirname(file), error, 'creating a folder of the cube cache');
  }
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomUUID()}.tmp`);
  try {
    await writeFile(temp, Readable.from(encode(cube, config), { objectMode: false }));
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw fileSystemError(file, error, `writing the cube of case ${cube.caseId}`);
  }
}

/** The header's JSON, checked: its format version first, then every field against the schema. */
function decodeHeader(file: string, json: string): CubeFileHeader {
  try {
    const header = decodeJson(CubeFormatField, json, 'cube header');
    if (header.format !== CUBE_FORMAT_VERSION)
      throw new LitsDataError(
        file,
        `cube format ${header.format}; this version reads ${CUBE_FORMAT_VERSION}`,
      );
    return checkJson(CubeFileHeaderSchema, header, 'cube header');
  } catch (error) {
    if (!(error instanceof JsonDecodeError)) throw error;
    throw new LitsDataError(file, `corrupt cube header (${error.problem})`, { cause: error });
  }
}

function decode(
  file: string,
  bytes: Buffer,
): {
  header: CubeFileHeader;
  image: Float32Array;
  label: Uint8Array;
  imageBytes: Uint8Array;
  labelBytes: Uint8Array;
} {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 8) !== MAGIC)
    throw new LitsDataError(file, 'not a lits-data cube file');
  const jsonLength = bytes.readUInt32LE(8);
  if (12 + jsonLength > bytes.length) throw new LitsDataError(file, 'cube file truncated inside its header');
  const header = decodeHeader(file, bytes.toString('utf8', 12, 12 + jsonLength));
  const count = header.shape[0] * header.shape[1] * header.shape[2];
  const imageOffset = 12 + jsonLength + ((8 - ((12 + jsonLength) % 8)) % 8);
  const expected = imageOffset + count * 5;
  if (bytes.length !== expected)
    throw new LitsDataError(file, `cube file is ${bytes.length} bytes; its header says ${expected}`);
  let buffer = bytes;
  if ((bytes.byteOffset + imageOffset) % 4 !== 0) buffer = Buffer.from(bytes);
  const image = new Float32Array(buffer.buffer, buffer.byteOffset + imageOffset, count);
  const label = new Uint8Array(buffer.buffer, buffer.byteOffset + imageOffset + count * 4, count);
  return {
    header,
    image,
    label,
    imageBytes: new Uint8Array(image.buffer, image.byteOffset, image.byteLength),
    labelBytes: label,
  };
}

/** Loads a cached cube: one read, typed-array views on it, no copies. */
export function loadCube(file: string): Cube & { config: PreprocessConfig } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new LitsDataError(file, code === 'ENOENT' ? 'cube not in the cache' : errorMessage(error), {
      cause: error,
    });
  }
  const { header, image, label } = decode(file, bytes);
  return {
    image,
    label,
    shape: header.shape,
    caseId: header.caseId,
    geometry: header.geometry,
    config: header.config,
  };
}

/** Loads a cube and checks its CRCs (slower than `loadCube`; for audits). */
export function verifyCubeFile(file: string): void {
  const { header, imageBytes, labelBytes } = decode(file, readFileSync(file));
  if (crc32(imageBytes) !== header.imageCrc32) throw new LitsDataError(file, 'image bytes fail their CRC-32');
  if (crc32(labelBytes) !== header.labelCrc32) throw new LitsDataError(file, 'label bytes fail their CRC-32');
}
