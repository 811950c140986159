/**
 * Block-mean downscaling (skimage `downscale_local_mean`) with the seed's z pad/crop applied virtually, so a
 * 512×512×200 volume is never materialised at 512 slices. Unscaled data are summed straight from the typed array;
 * scaled data are copied row by row into float64 (native `TypedArray.set`) and scaled there.
 */
import { planSliceCount, roundHalfEven, sourceSlice, type SliceCountPlan } from './blocks.js';
import type { Grid, Shape3 } from './grid.js';

export interface DownscaleOptions {
  /** Virtual slice-count step applied first (the seed's z = 512). */
  slicePlan?: SliceCountPlan;
  /** Value of padded slices (the seed uses the image minimum, 0 for labels). */
  padValue?: number;
  /** Only compute this box of the downscaled grid (start inclusive, clipped to the grid). */
  region?: { start: Shape3; size: Shape3 };
}

/** Shape after block-mean downscaling: skimage pads each axis with zeros up to a multiple of the factor. */
export function downscaledShape(shape: Shape3, factor: number, slicePlan?: SliceCountPlan): Shape3 {
  const nz = slicePlan ? slicePlan.target : shape[2];
  return [Math.ceil(shape[0] / factor), Math.ceil(shape[1] / factor), Math.ceil(nz / factor)];
}

/** Smallest (or largest) stored value, ignoring NaN; four running values are far faster than one in V8. */
function storedExtreme(data: Grid['data'], largest: boolean): number {
  const sign = largest ? -1 : 1;
  let a = Infinity;
  let b = Infinity;
  let c = Infinity;
  let d = Infinity;
  const n = data.length - (data.length % 4);
  for (let i = 0; i < n; i += 4) {
    const v0 = sign * data[i]!;
    const v1 = sign * data[i + 1]!;
    const v2 = sign * data[i + 2]!;
    const v3 = sign * data[i + 3]!;
    if (v0 < a) a = v0;
    if (v1 < b) b = v1;
    if (v2 < c) c = v2;
    if (v3 < d) d = v3;
  }
  for (let i = n; i < data.length; i++) {
    const v = sign * data[i]!;
    if (v < a) a = v;
  }
  return sign * Math.min(a, b, c, d);
}

/** Minimum real value, ignoring NaN (the seed's pad value for the image). */
export function minValue(grid: Grid): number {
  return realMin(
    storedExtreme(grid.data, false),
    grid.scale ? storedExtreme(grid.data, true) : -Infinity,
    grid.scale,
  );
}

/** The smallest real value given the smallest and largest stored ones (a negative slope swaps them). */
export function realMin(storedMin: number, storedMax: number, scale: Grid['scale']): number {
  if (!scale) return storedMin;
  const stored = scale.slope < 0 ? storedMax : storedMin;
  return Number.isFinite(stored) ? Math.fround(stored * scale.slope + scale.inter) : Infinity;
}

/** Running smallest (and, for a negative slope, largest) stored value over chunks (NaN ignored). */
export class StoredRange {
  min = Infinity;
  max = -Infinity;

  constructor(private readonly needMax: boolean) {}

  add(values: Grid['data']): void {
    this.min = Math.min(this.min, storedExtreme(values, false));
    if (this.needMax) this.max = Math.max(this.max, storedExtreme(values, true));
  }
}

/** The part of the source that feeds the requested box of the downscaled grid. */
interface Window {
  factor: number;
  start: Shape3;
  size: Shape3;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  /** For each source x in [x0, x1): its block column relative to start. */
  xBlock: Int32Array;
}

function windowOf(
  shape: Shape3,
  factor: number,
  plan: SliceCountPlan,
  region?: DownscaleOptions['region'],
): Window {
  const full = downscaledShape(shape, factor, plan);
  const start: Shape3 = region ? region.start : [0, 0, 0];
  const size = [0, 1, 2].map((a) =>
    Math.max(0, Math.min(region ? region.size[a]! : full[a]!, full[a]! - start[a]!)),
  ) as Shape3;
  const x0 = start[0] * factor;
  const x1 = Math.min(shape[0], (start[0] + size[0]) * factor);
  const xBlock = new Int32Array(Math.max(0, x1 - x0));
  for (let x = x0; x < x1; x++) xBlock[x - x0] = Math.floor(x / factor) - start[0];
  return {
    factor,
    start,
    size,
    x0,
    x1,
    y0: start[1] * factor,
    y1: Math.min(shape[1], (start[1] + size[1]) * factor),
    xBlock,
  };
}

function accumulateDirect(
  data: Grid['data'],
  nx: number,
  ny: number,
  z: number,
  w: Window,
  acc: Float64Array,
): void {
  const { x0, x1, y0, y1, factor, xBlock } = w;
  const ox = w.size[0];
  const width = x1 - x0;
  for (let y = y0; y < y1; y++) {
    const out = (Math.floor(y / factor) - w.start[1]) * ox;
    const base = nx * (y + ny * z) + x0;
    if (factor === 2) {
      const pairs = width >> 1;
      for (let i = 0; i < pairs; i++) acc[out + i]! += data[base + 2 * i]! + data[base + 2 * i + 1]!;
      if (width & 1) acc[out + pairs]! += data[base + width - 1]!;
    } else for (let x = 0; x < width; x++) acc[out + xBlock[x]!]! += data[base + x]!;
  }
}

/**
 * Factor-2 fast paths reading 32-bit words (little-endian): four uint8 mask voxels per word, skipping all-zero words
 * (most of a mask), or two int16 CT voxels per word. Null when the layout does not allow it.
 */
function wordReader(
  grid: Grid,
  factor: number,
  w: Window,
): ((z: number, acc: Float64Array, touched: Int32Array) => void) | null {
  const data = grid.data;
  const [nx, ny] = grid.shape;
  const width = w.x1 - w.x0;
  if (factor !== 2 || grid.scale || data.byteOffset % 4 !== 0) return null;
  const ox = w.size[0];
  if (data instanceof Uint8Array && nx % 4 === 0 && w.x0 % 4 === 0 && width % 4 === 0) {
    const words = new Uint32Array(data.buffer, data.byteOffset, data.length >> 2);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
    const zeros = Buffer.alloc(width);
    const quads = width >> 2;
    return (z, acc, touched) => {
      for (let y = w.y0; y < w.y1; y++) {
        const first = nx * (y + ny * z) + w.x0;
        // A native memcmp against zeros skips the background rows that make up most of a mask.
        if (bytes.compare(zeros, 0, width, first, first + width) === 0) continue;
        const out = ((y >> 1) - w.start[1]) * ox;
        const base = first >> 2;
        for (let q = 0; q < quads; q++) {
          const v = words[base + q]!;
          if (v === 0) continue;
          const at = out + 2 * q;
          acc[at]! += (v & 0xff) + ((v >>> 8) & 0xff);
          acc[at + 1]! += ((v >>> 16) & 0xff) + (v >>> 24);
          if (at < touched[0]!) touched[0] = at;
          if (at + 1 > touched[1]!) touched[1] = at + 1;
        }
      }
    };
  }
  if (data instanceof Int16Array && nx % 2 === 0 && w.x0 % 2 === 0 && width % 2 === 0) {
    const words = new Int32Array(data.buffer, data.byteOffset, data.length >> 1);
    const pairs = width >> 1;
    return (z, acc, touched) => {
      touched[0] = 0;
      touched[1] = acc.length - 1;
      for (let y = w.y0; y < w.y1; y++) {
        const out = ((y >> 1) - w.start[1]) * ox;
        const base = (nx * (y + ny * z) + w.x0) >> 1;
        for (let q = 0; q < pairs; q++) {
          const v = words[base + q]!;
          acc[out + q]! += ((v << 16) >> 16) + (v >> 16);
        }
      }
    };
  }
  return null;
}

function accumulateRows(grid: Grid, z: number, w: Window, acc: Float64Array, row: Float64Array): void {
  const [nx, ny] = grid.shape;
  const data = grid.data;
  if (!grid.scale) return accumulateDirect(data, nx, ny, z, w, acc);
  const { x0, x1, y0, y1, factor, xBlock } = w;
  const ox = w.size[0];
  const width = x1 - x0;
  const scale = grid.scale ?? null;
  for (let y = y0; y < y1; y++) {
    const base = nx * (y + ny * z);
    row.set(data.subarray(base + x0, base + x1));
    if (scale) for (let i = 0; i < width; i++) row[i] = Math.fround(row[i]! * scale.slope + scale.inter);
    const out = (Math.floor(y / factor) - w.start[1]) * ox;
    if (factor === 2) {
      const pairs = width >> 1;
      for (let i = 0; i < pairs; i++) acc[out + i]! += row[2 * i]! + row[2 * i + 1]!;
      if (width & 1) acc[out + pairs]! += row[width - 1]!;
    } else for (let x = 0; x < width; x++) acc[out + xBlock[x]!]! += row[x]!;
  }
}

/** Real (non-padding) voxels per block column / row: factor, less at the end of an axis. */
function blockCounts(n: number, first: number, count: number, factor: number): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++)
    out[i] = Math.max(0, Math.min(n, (first + i + 1) * factor) - (first + i) * factor);
  return out;
}

/**
 * Runs the block sums plane by plane and hands each finished plane of sums to `emit`, with the number of padded
 * slices in it and the range [from, to] of sums that can be non-zero (sparse masks touch a small part of a plane).
 */
function sweep(
  grid: Grid,
  factor: number,
  options: DownscaleOptions,
  emit: (acc: Float64Array, k: number, padSlices: number, from: number, to: number) => void,
): Window {
  if (!Number.isInteger(factor) || factor < 1)
    throw new RangeError(`downscale factor must be ≥ 1, got ${factor}`);
  const nz = grid.shape[2];
  const plan = options.slicePlan ?? planSliceCount(nz, nz);
  if (plan.padBefore + plan.padAfter + nz - plan.cropBefore - plan.cropAfter !== plan.target)
    throw new RangeError(`slice plan for ${plan.target} slices does not fit ${nz} source slices`);
  const w = windowOf(grid.shape, factor, plan, options.region);
  const acc = new Float64Array(w.size[0] * w.size[1]);
  const row = new Float64Array(Math.max(0, w.x1 - w.x0));
  const fast = wordReader(grid, factor, w);
  const touched = new Int32Array(2);
  for (let k = 0; k < w.size[2]; k++) {
    let padSlices = 0;
    touched[0] = acc.length;
    touched[1] = -1;
    for (let dz = 0; dz < factor; dz++) {
      const zf = (w.start[2] + k) * factor + dz;
      if (zf >= plan.target) continue; // skimage's zero padding
      const zs = sourceSlice(plan, zf);
      if (zs < 0) padSlices++;
      else if (fast) fast(zs, acc, touched);
      else {
        accumulateRows(grid, zs, w, acc, row);
        touched[0] = 0;
        touched[1] = acc.length - 1;
      }
    }
    emit(acc, k, padSlices, touched[0]!, touched[1]!);
    if (touched[1]! >= touched[0]!) acc.fill(0, touched[0], touched[1]! + 1);
  }
  return w;
}

/**
 * skimage `downscale_local_mean(x, (f, f, f))`: the mean of each f×f×f block, where positions beyond the end of an
 * axis count as 0 (skimage's cval). Sums run in float64; the result is float32, NIfTI order.
 */
export function downscaleMean(
  grid: Grid,
  factor: number,
  options: DownscaleOptions = {},
): Grid<Float32Array> {
  const padValue = options.padValue ?? 0;
  const probe = windowOf(
    grid.shape,
    factor,
    options.slicePlan ?? planSliceCount(grid.shape[2], grid.shape[2]),
    options.region,
  );
  const [ox, oy] = probe.size;
  const out = new Float32Array(ox * oy * probe.size[2]);
  const xCount = blockCounts(grid.shape[0], probe.start[0], ox, factor);
  const yCount = blockCounts(grid.shape[1], probe.start[1], oy, factor);
  const volume = factor * factor * factor;
  sweep(grid, factor, options, (acc, k, padSlices) => {
    const base = ox * oy * k;
    const pad = padValue * padSlices;
    for (let j = 0; j < oy; j++) {
      const padRow = pad * yCount[j]!;
      for (let i = 0; i < ox; i++) out[base + ox * j + i] = (acc[ox * j + i]! + padRow * xCount[i]!) / volume;
    }
  });
  return { data: out, shape: probe.size };
}

/** A downscaled mask and the box (inclusive) of its voxels ≥ 1, or null bounds when it has none. */
export interface DownscaledLabel extends Grid<Uint8Array> {
  bounds: { lo: Shape3; hi: Shape3 } | null;
}

/** The seed's label path: block mean, `np.round` (half to even), clip to [0, maxLabel], as uint8. */
export function downscaleLabel(
  grid: Grid,
  factor: number,
  options: Omit<DownscaleOptions, 'padValue'> = {},
  maxLabel = 2,
): DownscaledLabel {
  const probe = windowOf(
    grid.shape,
    factor,
    options.slicePlan ?? planSliceCount(grid.shape[2], grid.shape[2]),
    options.region,
  );
  const [ox, oy] = probe.size;
  const plane = ox * oy;
  const out = new Uint8Array(plane * probe.size[2]);
  const volume = factor * factor * factor;
  const lo: Shape3 = [Infinity, Infinity, Infinity];
  const hi: Shape3 = [-1, -1, -1];
  sweep(grid, factor, options, (acc, k, _pad, from, to) => {
    const base = plane * k;
    for (let i = from; i <= to; i++) {
      const sum = acc[i]!;
      if (sum === 0) continue;
      const r = roundHalfEven(Math.fround(sum / volume));
      const v = r < 0 ? 0 : r > maxLabel ? maxLabel : r;
      out[base + i] = v;
      if (v >= 1) {
        const x = i % ox;
        const y = (i - x) / ox;
        if (x < lo[0]) lo[0] = x;
        if (x > hi[0]) hi[0] = x;
        if (y < lo[1]) lo[1] = y;
        if (y > hi[1]) hi[1] = y;
        if (k < lo[2]) lo[2] = k;
        if (k > hi[2]) hi[2] = k;
      }
    }
  });
  return { data: out, shape: probe.size, bounds: hi[0] < 0 ? null : { lo, hi } };
}
