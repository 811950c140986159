import { LitsDataError } from '../errors.js';

/** The voxel arrays we read and write: NIfTI's integer and float datatypes up to 32/64 bits. */
export type NiftiData =
  Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

export type DatatypeName = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

export interface Datatype {
  code: number;
  name: DatatypeName;
}

interface DatatypeSpec {
  code: number;
  name: DatatypeName;
  bytes: number;
  isFloat: boolean;
  create: (buffer: ArrayBufferLike, byteOffset: number, length: number) => NiftiData;
  alloc: (length: number) => NiftiData;
}

const SPECS: readonly DatatypeSpec[] = [
  spec(2, 'uint8', 1, false, Uint8Array),
  spec(4, 'int16', 2, false, Int16Array),
  spec(8, 'int32', 4, false, Int32Array),
  spec(16, 'float32', 4, true, Float32Array),
  spec(64, 'float64', 8, true, Float64Array),
  spec(256, 'int8', 1, false, Int8Array),
  spec(512, 'uint16', 2, false, Uint16Array),
  spec(768, 'uint32', 4, false, Uint32Array),
];

interface TypedArrayCtor<T extends NiftiData> {
  new (length: number): T;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
}

function spec<T extends NiftiData>(
  code: number,
  name: DatatypeName,
  bytes: number,
  isFloat: boolean,
  Ctor: TypedArrayCtor<T>,
): DatatypeSpec {
  return {
    code,
    name,
    bytes,
    isFloat,
    create: (buffer, byteOffset, length) => new Ctor(buffer, byteOffset, length),
    alloc: (length) => new Ctor(length),
  };
}

/** Names NIfTI gives the codes we do not support, so the error can say what the file holds. */
const UNSUPPORTED_NAMES: Record<number, string> = {
  0: 'unknown',
  1: 'binary (1 bit)',
  32: 'complex64',
  128: 'rgb24',
  1024: 'int64',
  1280: 'uint64',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'rgba32',
};

export function datatypeByCode(code: number, file: string): DatatypeSpec {
  const found = SPECS.find((s) => s.code === code);
  if (found) return found;
  const name = UNSUPPORTED_NAMES[code] ?? 'not a NIfTI datatype';
  throw new LitsDataError(
    file,
    `datatype ${code} (${name}) is not supported; supported: ${SPECS.map((s) => s.name).join(', ')}`,
  );
}

export function datatypeByName(name: DatatypeName): DatatypeSpec {
  const found = SPECS.find((s) => s.name === name);
  if (!found) throw new Error(`unknown datatype ${name}`);
  return found;
}

/** The datatype a typed array is written as. */
export function datatypeOfArray(data: NiftiData): DatatypeSpec {
  if (data instanceof Uint8Array) return datatypeByName('uint8');
  if (data instanceof Int8Array) return datatypeByName('int8');
  if (data instanceof Int16Array) return datatypeByName('int16');
  if (data instanceof Uint16Array) return datatypeByName('uint16');
  if (data instanceof Int32Array) return datatypeByName('int32');
  if (data instanceof Uint32Array) return datatypeByName('uint32');
  if (data instanceof Float32Array) return datatypeByName('float32');
  return datatypeByName('float64');
}

/** Reverses the byte order of each `bytes`-wide element in place. */
export function swapBytesInPlace(view: Uint8Array, bytes: number): void {
  if (bytes === 1) return;
  const n = view.length - (view.length % bytes);
  if (bytes === 2) {
    for (let i = 0; i < n; i += 2) {
      const t = view[i] as number;
      view[i] = view[i + 1] as number;
      view[i + 1] = t;
    }
    return;
  }
  for (let i = 0; i < n; i += bytes) {
    for (let a = i, b = i + bytes - 1; a < b; a++, b--) {
      const t = view[a] as number;
      view[a] = view[b] as number;
      view[b] = t;
    }
  }
}

export type { DatatypeSpec };
