/**
 * A deliberately naive re-statement of the seed's notebook (seed.md §2.1), written from the description and not from
 * our implementation: materialise every step, loop over every voxel, and use numpy/skimage semantics literally.
 */
export type V3 = [number, number, number];

export interface RefVolume {
  /** value(x, y, z) */
  get: (x: number, y: number, z: number) => number;
  shape: V3;
}

/** numpy.round: ties go to the even neighbour. */
export function npRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Step 1: z forced to `target` by symmetric padding with `fill` (extra slice after) or a centre crop. */
export function forceZ(v: RefVolume, target: number, fill: number): RefVolume {
  const z = v.shape[2];
  if (z <= target) {
    const before = Math.floor((target - z) / 2);
    return {
      shape: [v.shape[0], v.shape[1], target],
      get: (x, y, k) => (k < before || k >= before + z ? fill : v.get(x, y, k - before)),
    };
  }
  const start = Math.floor((z - target) / 2);
  return { shape: [v.shape[0], v.shape[1], target], get: (x, y, k) => v.get(x, y, k + start) };
}

/** Step 2: skimage downscale_local_mean with cval 0: pad to a multiple of f with zeros, average f³ blocks. */
export function localMean(v: RefVolume, f: number): { data: Float64Array; shape: V3 } {
  const shape = v.shape.map((n) => Math.ceil(n / f)) as V3;
  const data = new Float64Array(shape[0] * shape[1] * shape[2]);
  for (let k = 0; k < shape[2]; k++)
    for (let j = 0; j < shape[1]; j++)
      for (let i = 0; i < shape[0]; i++) {
        let sum = 0;
        for (let c = 0; c < f; c++)
          for (let b = 0; b < f; b++)
            for (let a = 0; a < f; a++) {
              const x = i * f + a;
              const y = j * f + b;
              const z = k * f + c;
              if (x < v.shape[0] && y < v.shape[1] && z < v.shape[2]) sum += v.get(x, y, z);
            }
        data[i + shape[0] * (j + shape[1] * k)] = Math.fround(sum / (f * f * f));
      }
  return { data, shape };
}

/** Step 3: per axis, first and last index whose slice holds a label ≥ 1; centre = floor(first + (last − first) / 2). */
export function centre(label: { data: ArrayLike<number>; shape: V3 }): V3 | null {
  const [nx, ny, nz] = label.shape;
  const result: number[] = [];
  for (let axis = 0; axis < 3; axis++) {
    const n = label.shape[axis]!;
    let first = -1;
    let last = -1;
    for (let s = 0; s < n; s++) {
      let any = false;
      for (let z = 0; z < nz && !any; z++)
        for (let y = 0; y < ny && !any; y++)
          for (let x = 0; x < nx && !any; x++) {
            const idx = [x, y, z][axis];
            if (idx === s && label.data[x + nx * (y + ny * z)]! >= 1) any = true;
          }
      if (any) {
        if (first < 0) first = s;
        last = s;
      }
    }
    if (first < 0) return null;
    result.push(Math.floor(first + (last - first) / 2));
  }
  return result as V3;
}

/**
 * Step 4 with the negative-start fix: slice [max(0, c − size/2), that + size) and zero-pad at the end, like numpy
 * slicing followed by np.pad(..., constant 0). Returned in C order over (x, y, z).
 */
export function crop(
  grid: { data: ArrayLike<number>; shape: V3 },
  c: V3,
  size: number,
): { data: number[]; start: V3 } {
  const start = c.map((v) => Math.max(0, v - Math.floor(size / 2))) as V3;
  const data: number[] = [];
  for (let d = 0; d < size; d++)
    for (let h = 0; h < size; h++)
      for (let w = 0; w < size; w++) {
        const x = start[0] + d;
        const y = start[1] + h;
        const z = start[2] + w;
        const inside = x < grid.shape[0] && y < grid.shape[1] && z < grid.shape[2];
        data.push(inside ? grid.data[x + grid.shape[0] * (y + grid.shape[1] * z)]! : 0);
      }
  return { data, start };
}

export interface SeedReference {
  image: number[];
  label: number[];
  centre: V3;
  start: V3;
  downscaledImage: { data: Float64Array; shape: V3 };
  downscaledLabel: { data: Float64Array; shape: V3 };
}

export function seedReference(
  image: RefVolume,
  label: RefVolume,
  target: number,
  f: number,
  size: number,
): SeedReference {
  let min = Infinity;
  for (let z = 0; z < image.shape[2]; z++)
    for (let y = 0; y < image.shape[1]; y++)
      for (let x = 0; x < image.shape[0]; x++) min = Math.min(min, image.get(x, y, z));
  const img = localMean(forceZ(image, target, min), f);
  const labMean = localMean(forceZ(label, target, 0), f);
  const lab = { data: labMean.data.map((m) => Math.min(2, Math.max(0, npRound(m)))), shape: labMean.shape };
  const c = centre(lab);
  if (!c) throw new Error('reference: no liver');
  const imageCube = crop(img, c, size);
  return {
    image: imageCube.data,
    label: crop(lab, c, size).data,
    centre: c,
    start: imageCube.start,
    downscaledImage: img,
    downscaledLabel: lab,
  };
}
