// Exact Euclidean distance transform (Felzenszwalb & Huttenlocher, 2012): separable lower envelopes of parabolas,
// one pass per axis, with anisotropic voxel spacing. Used for surface distances in mm.

export type Shape3 = readonly [number, number, number];

/** Scratch buffers for one line of the transform, reused across lines. */
interface LineScratch {
  f: Float64Array;
  out: Float64Array;
  v: Int32Array;
  z: Float64Array;
}

/** out[q] = min_p (s²·(q − p)² + f[p]) over the first n entries; Infinity where every f is Infinity. */
function lowerEnvelope(n: number, s2: number, b: LineScratch): void {
  const { f, out, v, z } = b;
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    let s = -Infinity;
    while (k >= 0) {
      const p = v[k]!;
      s = (fq + s2 * q * q - (f[p]! + s2 * p * p)) / (2 * s2 * (q - p));
      if (s <= z[k]!) k--;
      else break;
    }
    k++;
    v[k] = q;
    z[k] = k === 0 ? -Infinity : s;
  }
  if (k < 0) {
    out.fill(Infinity, 0, n);
    return;
  }
  z[k + 1] = Infinity;
  let j = 0;
  for (let q = 0; q < n; q++) {
    while (z[j + 1]! < q) j++;
    const p = v[j]!;
    out[q] = s2 * (q - p) * (q - p) + f[p]!;
  }
}

/**
 * Squared distance in mm² from every voxel to the nearest voxel with `features[i] !== 0`, on a grid in NIfTI order
 * (x fastest) with `spacing` mm per voxel along x, y, z. Infinity everywhere when there is no feature voxel.
 */
export function squaredDistanceTransform(features: Uint8Array, shape: Shape3, spacing: Shape3): Float64Array {
  const [nx, ny, nz] = shape;
  const count = nx * ny * nz;
  if (features.length !== count)
    throw new RangeError(`features has ${features.length} voxels; shape ${shape.join('×')} needs ${count}`);
  if (spacing.some((s) => !(s > 0) || !Number.isFinite(s)))
    throw new RangeError(`spacing must be 3 positive numbers, got ${spacing.join(', ')}`);
  const d = new Float64Array(count);
  for (let i = 0; i < count; i++) d[i] = features[i] ? 0 : Infinity;
  const n = Math.max(nx, ny, nz);
  const scratch: LineScratch = {
    f: new Float64Array(n),
    out: new Float64Array(n),
    v: new Int32Array(n),
    z: new Float64Array(n + 1),
  };
  // Each pass: lines along one axis; `lines` enumerates every line's first index.
  const pass = (
    length: number,
    stride: number,
    starts: (visit: (start: number) => void) => void,
    s: number,
  ) => {
    const s2 = s * s;
    starts((start) => {
      for (let q = 0, i = start; q < length; q++, i += stride) scratch.f[q] = d[i]!;
      lowerEnvelope(length, s2, scratch);
      for (let q = 0, i = start; q < length; q++, i += stride) d[i] = scratch.out[q]!;
    });
  };
  pass(
    nx,
    1,
    (visit) => {
      for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) visit(nx * (y + ny * z));
    },
    spacing[0],
  );
  pass(
    ny,
    nx,
    (visit) => {
      for (let z = 0; z < nz; z++) for (let x = 0; x < nx; x++) visit(x + nx * ny * z);
    },
    spacing[1],
  );
  pass(
    nz,
    nx * ny,
    (visit) => {
      for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) visit(x + nx * y);
    },
    spacing[2],
  );
  return d;
}
