/** Typed arrays the ring can reduce. Payloads travel as their little-endian bytes. */
export type Lanes = Float32Array | Int32Array | Float64Array;

/** A Buffer view of elements [start, end) of `a` (no copy). */
export function bytesOf(a: Lanes, start: number, end: number): Buffer {
  const b = a.BYTES_PER_ELEMENT;
  return Buffer.from(a.buffer, a.byteOffset + start * b, (end - start) * b);
}

/** Reads `n` lanes of the same type as `like` out of a received Buffer, copying only when it is misaligned. */
export function lanesFrom<T extends Lanes>(like: T, buf: Buffer, n: number): T {
  const ctor = like.constructor as { new (b: ArrayBufferLike, o: number, n: number): T; new (n: number): T };
  if (buf.byteOffset % like.BYTES_PER_ELEMENT === 0) return new ctor(buf.buffer, buf.byteOffset, n);
  const out = new ctor(n);
  new Uint8Array(out.buffer).set(buf.subarray(0, n * like.BYTES_PER_ELEMENT));
  return out;
}

/** dst[i] = a[i] (op) b[i]; `dst` may be `a`. */
export type Combine<T extends Lanes> = (dst: T, a: T, b: T) => void;

/** fp32 add; each store rounds the exact double sum of two floats, i.e. a correctly rounded fp32 addition. */
export const sumFloat32: Combine<Float32Array> = (dst, a, b) => {
  for (let i = 0; i < dst.length; i++) dst[i] = (a[i] as number) + (b[i] as number);
};

/**
 * Max that keeps NaN and prefers +0 over -0; a plain `>` would make both depend on the order of the operands, and
 * exact mode needs max to give the same bits for any grouping.
 */
export const maxFloat32: Combine<Float32Array> = (dst, a, b) => {
  for (let i = 0; i < dst.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dst[i] = y > x || y !== y ? y : x === 0 && y === 0 && 1 / x < 0 ? y : x;
  }
};

/** Integer add; exact because exact mode bounds every partial sum below 2^31. */
export const sumInt32: Combine<Int32Array> = (dst, a, b) => {
  for (let i = 0; i < dst.length; i++) dst[i] = (a[i] as number) + (b[i] as number);
};

/** Add of integer-valued doubles; exact because exact mode bounds every partial sum by 2^53. */
export const sumFloat64: Combine<Float64Array> = (dst, a, b) => {
  for (let i = 0; i < dst.length; i++) dst[i] = (a[i] as number) + (b[i] as number);
};
