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

export type Combine<T extends Lanes> = (dst: T, src: T) => void;

/** fp32 add; each store rounds the exact double sum of two floats, i.e. a correctly rounded fp32 addition. */
export const sumFloat32: Combine<Float32Array> = (dst, src) => {
  for (let i = 0; i < dst.length; i++) dst[i] = (dst[i] as number) + (src[i] as number);
};

/**
 * Max that keeps NaN and prefers +0 over -0; a plain `>` would make both depend on arrival order, and exact mode
 * needs max to give the same bits for any grouping.
 */
export const maxFloat32: Combine<Float32Array> = (dst, src) => {
  for (let i = 0; i < dst.length; i++) {
    const s = src[i] as number;
    const d = dst[i] as number;
    if (s > d || s !== s) dst[i] = s;
    else if (s === 0 && d === 0 && 1 / d < 0) dst[i] = s;
  }
};

/** Integer add; exact because exact mode bounds every partial sum below 2^31. */
export const sumInt32: Combine<Int32Array> = (dst, src) => {
  for (let i = 0; i < dst.length; i++) dst[i] = (dst[i] as number) + (src[i] as number);
};

/** Add of integer-valued doubles; exact because exact mode bounds every partial sum by 2^53. */
export const sumFloat64: Combine<Float64Array> = (dst, src) => {
  for (let i = 0; i < dst.length; i++) dst[i] = (dst[i] as number) + (src[i] as number);
};
