import { open, readFile, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { errorMessage } from '@lits-ddp/errors';
import { LitsDataError, formatBytes } from '../errors.js';
import { datatypeByCode, swapBytesInPlace, type NiftiData } from './datatypes.js';
import { headerBytesNeeded, parseHeader, type NiftiHeaderInfo } from './header.js';

/** A NIfTI image with its voxels, x fastest (NIfTI order): index = i + nx·(j + ny·k). */
export interface NiftiVolume<D extends NiftiData = NiftiData> extends NiftiHeaderInfo {
  /** May be a view into a larger buffer: use byteOffset/byteLength, not `.buffer` alone. */
  data: D;
  /** True when `data` already holds slope·x + inter (the default read); false for `native` reads. */
  dataIsScaled: boolean;
}

export interface ReadNiftiOptions {
  /** Return the stored typed array (byte-swapped to host order, unscaled) instead of scaled float32. */
  native?: boolean;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const HEAD_READ = 64 * 1024;
const MAX_HEADER = 64 * 1024 * 1024;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
}

/** The slope/intercept to apply, or null when the stored values are the values (slope 0, non-finite, or 1/0). */
export function scalingOf(
  h: Pick<NiftiHeaderInfo, 'sclSlope' | 'sclInter'>,
): { slope: number; inter: number } | null {
  const slope = h.sclSlope;
  if (!Number.isFinite(slope) || slope === 0) return null;
  const inter = Number.isFinite(h.sclInter) ? h.sclInter : 0;
  if (slope === 1 && inter === 0) return null;
  return { slope, inter };
}

interface Paths {
  header: string;
  image: string;
  pair: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    // Probes partner-file candidates; the chosen file's own read reports why it cannot be read.
    return false;
  }
}

/** For a .hdr/.img pair (each possibly .gz) finds the partner file; a single .nii is both. */
async function resolvePaths(path: string): Promise<Paths> {
  const hdr = /\.hdr(\.gz)?$/i.exec(path);
  if (hdr) {
    const base = path.slice(0, hdr.index);
    for (const candidate of [`${base}.img`, `${base}.img.gz`, `${base}.IMG`]) {
      if (await exists(candidate)) return { header: path, image: candidate, pair: true };
    }
    return { header: path, image: `${base}.img`, pair: true };
  }
  const img = /\.img(\.gz)?$/i.exec(path);
  if (img) {
    const base = path.slice(0, img.index);
    for (const candidate of [`${base}.hdr`, `${base}.hdr.gz`, `${base}.HDR`]) {
      if (await exists(candidate)) return { header: candidate, image: path, pair: true };
    }
    throw new LitsDataError(path, `no header found for this .img (expected ${base}.hdr or ${base}.hdr.gz)`);
  }
  return { header: path, image: path, pair: false };
}

function fsError(file: string, error: unknown): LitsDataError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new LitsDataError(file, 'file not found', { cause: error });
  if (code === 'EISDIR') return new LitsDataError(file, 'is a directory, not a file', { cause: error });
  if (code === 'ERR_FS_FILE_TOO_LARGE')
    return new LitsDataError(file, 'file larger than 2 GiB; Node cannot read it in one piece', {
      cause: error,
    });
  return new LitsDataError(file, errorMessage(error), { cause: error });
}

/** Inflates a whole gzip file into one buffer sized from the gzip trailer, so there is no final concatenation. */
function gunzipWhole(
  compressed: Buffer,
  file: string,
  onData?: (out: Buffer, filled: number) => void,
): Promise<Buffer> {
  const trailer = compressed.length >= 18 ? compressed.readUInt32LE(compressed.length - 4) : 0;
  const plausible = trailer > 0 && trailer <= compressed.length * 1100 && trailer < 2 ** 32 - 1;
  let out = Buffer.allocUnsafeSlow(plausible ? trailer : Math.max(1024, compressed.length * 4));
  let filled = 0;
  return new Promise((resolve, reject) => {
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    gunzip.on('data', (chunk: Buffer) => {
      if (filled + chunk.length > out.length) {
        const grown = Buffer.allocUnsafeSlow(Math.max(out.length * 2, filled + chunk.length));
        out.copy(grown, 0, 0, filled);
        out = grown;
      }
      chunk.copy(out, filled);
      filled += chunk.length;
      onData?.(out, filled);
    });
    gunzip.on('end', () => resolve(filled === out.length ? out : out.subarray(0, filled)));
    gunzip.on('error', (error: NodeJS.ErrnoException) => {
      const reason =
        error.code === 'Z_BUF_ERROR'
          ? `gzip stream truncated after ${formatBytes(compressed.length)} (${formatBytes(filled)} inflated)`
          : `corrupt gzip data (${error.message}) after ${formatBytes(filled)} inflated`;
      reject(new LitsDataError(file, reason, { cause: error }));
    });
    gunzip.end(compressed);
  });
}

/** The whole file, inflated when it is gzip (`onData` sees the buffer fill up, for gzip only). */
export async function readFileBytes(
  file: string,
  onData?: (out: Buffer, filled: number) => void,
): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (error) {
    throw fsError(file, error);
  }
  if (raw.length === 0) throw new LitsDataError(file, 'empty file (0 bytes)');
  return isGzip(raw) ? gunzipWhole(raw, file, onData) : raw;
}

async function isGzipFile(file: string): Promise<boolean> {
  const fh = await open(file, 'r').catch((error: unknown) => {
    throw fsError(file, error);
  });
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 0);
    return bytesRead === 2 && isGzip(buf);
  } finally {
    await fh.close();
  }
}

/** The first `want` bytes of a file (inflated when gzip), or fewer when the file is shorter. */
async function readHead(file: string, want: number): Promise<Uint8Array> {
  const fh = await open(file, 'r').catch((error: unknown) => {
    throw fsError(file, error);
  });
  let first: Uint8Array;
  try {
    const buf = Buffer.alloc(Math.max(want, 2));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    first = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  if (first.length === 0) throw new LitsDataError(file, 'empty file (0 bytes)');
  if (!isGzip(first)) return first;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const source = createReadStream(file, { highWaterMark: HEAD_READ });
    const gunzip = createGunzip();
    const finish = (): void => {
      source.destroy();
      gunzip.destroy();
      resolve(Buffer.concat(chunks, have).subarray(0, Math.min(have, want)));
    };
    gunzip.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= want) finish();
    });
    gunzip.on('end', finish);
    gunzip.on('error', (error: NodeJS.ErrnoException) => {
      if (have > 0) return finish();
      source.destroy();
      reject(new LitsDataError(file, `corrupt gzip data (${error.message})`, { cause: error }));
    });
    source.on('error', (error) => reject(fsError(file, error)));
    source.pipe(gunzip);
  });
}

async function readHeaderOnly(paths: Paths, file: string): Promise<NiftiHeaderInfo> {
  let head = await readHead(paths.header, HEAD_READ);
  const needed = paths.pair ? head.length : Math.min(headerBytesNeeded(head), MAX_HEADER);
  if (needed > head.length && head.length === HEAD_READ) head = await readHead(paths.header, needed);
  return parseHeader(paths.pair ? head : head.subarray(0, Math.min(needed, head.length)), file, paths.image);
}

function voxelByteCount(h: NiftiHeaderInfo): number {
  return h.shape.reduce((a, b) => a * b, 1) * datatypeByCode(h.datatype.code, h.file).bytes;
}

/**
 * Reads only the header (and, for gzip, inflates only its first bytes). For an uncompressed file it also checks that
 * the file is long enough for its voxels (a gzip file's length is only known by inflating it all) and that the .img of
 * a pair exists; `checkImage: false` skips both, for header-only files.
 */
export async function readNiftiHeader(
  path: string,
  options: { checkImage?: boolean } = {},
): Promise<NiftiHeaderInfo> {
  const paths = await resolvePaths(path);
  const header = await readHeaderOnly(paths, path);
  if (options.checkImage === false) return header;
  if (paths.pair && !(await exists(paths.image)))
    throw new LitsDataError(paths.image, `image file missing for header ${paths.header}`);
  if (!(await isGzipFile(paths.image))) {
    const size = (await stat(paths.image)).size;
    const start = header.voxOffset;
    const need = voxelByteCount(header);
    if (size < start + need)
      throw new LitsDataError(
        paths.image,
        `file truncated: voxel data needs ${formatBytes(need)} from offset ${start}, file has ${formatBytes(size)}`,
      );
  }
  return header;
}

function extractVoxels(bytes: Buffer, header: NiftiHeaderInfo, imageFile: string): NiftiData {
  const spec = datatypeByCode(header.datatype.code, header.file);
  const count = header.shape.reduce((a, b) => a * b, 1);
  const need = count * spec.bytes;
  const start = header.voxOffset;
  if (bytes.length < start + need)
    throw new LitsDataError(
      imageFile,
      `file truncated: voxel data needs ${formatBytes(need)} from offset ${start}, file has ${formatBytes(bytes.length)}`,
    );
  let view = bytes.subarray(start, start + need);
  if (view.byteOffset % spec.bytes !== 0) view = Buffer.from(view);
  if (header.byteOrder === 'big') swapBytesInPlace(view, spec.bytes);
  return spec.create(view.buffer, view.byteOffset, count);
}

function toFloat32(data: NiftiData, scaling: { slope: number; inter: number } | null): Float32Array {
  if (!scaling && data instanceof Float32Array) return data;
  const out = new Float32Array(data.length);
  if (!scaling) {
    out.set(data);
    return out;
  }
  const { slope, inter } = scaling;
  for (let i = 0; i < data.length; i++) out[i] = (data[i] as number) * slope + inter;
  return out;
}

/** Reads a NIfTI-1/2 image (.nii, .nii.gz, .hdr/.img pairs, Analyze 7.5 pairs), scaled to float32 by default. */
export async function readNifti(
  path: string,
  options?: { native?: false },
): Promise<NiftiVolume<Float32Array>>;
export async function readNifti(path: string, options: { native: true }): Promise<NiftiVolume>;
export async function readNifti(path: string, options: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  const { volume } = await readNiftiObserved(path, null);
  if (options.native) return volume;
  return { ...volume, data: toFloat32(volume.data, scalingOf(volume)), dataIsScaled: true };
}

/** Sees the stored values of a little-endian single-file .nii.gz in order, while it is still being inflated. */
export interface VoxelObserver {
  next(values: NiftiData): void;
}

/**
 * `readNifti(path, { native: true })` that also feeds `observer` as the voxels arrive, so work such as a running
 * minimum overlaps the inflate. `observedAll` says whether the observer saw every voxel (false for other files).
 */
export async function readNiftiObserved(
  path: string,
  observer: VoxelObserver | null,
): Promise<{ volume: NiftiVolume; observedAll: boolean }> {
  const paths = await resolvePaths(path);
  let header: NiftiHeaderInfo;
  let imageBytes: Buffer;
  let seen = 0;
  if (paths.pair) {
    header = await readHeaderOnly(paths, path);
    if (!(await exists(paths.image)))
      throw new LitsDataError(paths.image, `image file missing for header ${paths.header}`);
    imageBytes = await readFileBytes(paths.image);
  } else {
    const watch = observer ? progressiveView(path, observer, (n) => (seen = n)) : undefined;
    imageBytes = await readFileBytes(path, watch);
    const needed = Math.min(headerBytesNeeded(imageBytes), imageBytes.length, MAX_HEADER);
    header = parseHeader(imageBytes.subarray(0, needed), path, path);
    const headerSize = header.format === 'nifti2' ? 544 : 352;
    if (header.voxOffset < headerSize)
      throw new LitsDataError(
        path,
        `vox_offset ${header.voxOffset} points inside the ${headerSize}-byte header`,
      );
  }
  const data = extractVoxels(imageBytes, header, paths.image);
  return {
    volume: { ...header, data, dataIsScaled: false },
    observedAll: observer !== null && seen === data.length,
  };
}

/** A gunzip progress callback that hands newly complete voxels to the observer; gives up on anything unusual. */
function progressiveView(
  path: string,
  observer: VoxelObserver,
  report: (seen: number) => void,
): (out: Buffer, filled: number) => void {
  let header: NiftiHeaderInfo | null = null;
  let view: NiftiData | null = null;
  let seen = 0;
  let off = false;
  return (out, filled) => {
    if (off || filled < 544) return;
    try {
      if (!header) {
        const needed = headerBytesNeeded(out.subarray(0, filled));
        if (filled < needed) return;
        header = parseHeader(out.subarray(0, needed), path, path);
      }
      const spec = datatypeByCode(header.datatype.code, path);
      const count = header.shape.reduce((a, b) => a * b, 1);
      const start = out.byteOffset + header.voxOffset;
      if (
        header.byteOrder !== 'little' ||
        start % spec.bytes !== 0 ||
        out.length < header.voxOffset + count * spec.bytes
      ) {
        off = true;
        return;
      }
      if (!view || view.buffer !== out.buffer) view = spec.create(out.buffer, start, count);
      const available = Math.min(count, Math.floor((filled - header.voxOffset) / spec.bytes));
      if (available > seen) {
        observer.next(view.subarray(seen, available));
        seen = available;
        report(seen);
      }
    } catch {
      off = true; // the full read reports whatever is wrong with the file
    }
  };
}
