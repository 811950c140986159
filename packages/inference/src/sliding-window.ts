// Sliding-window prediction over a whole preprocessed volume (seed order [D, H, W]), windows blended with a Gaussian
// importance map (nnU-Net / MONAI `mode="gaussian"`), reduced to an argmax label per voxel. Accumulators cover one
// slab of window depth along D at a time, so memory is H·W·window·classes floats whatever D is.

export type Shape3 = [number, number, number];

/** `image` [batch, D, H, W, 1] → softmax probabilities [batch, D, H, W, classes] (channels last). */
export type WindowPredictor = (image: Float32Array, shape: Shape3, batch: number) => Float32Array;

export interface WindowPlan {
  grid: Shape3;
  /** Window edge per axis: the requested window, or the axis rounded up to a multiple of 4 when smaller. */
  window: Shape3;
  /** Window start positions per axis. */
  starts: [number[], number[], number[]];
  count: number;
}

/**
 * Start positions along one axis: evenly spaced (nnU-Net's rule), the first at 0 and the last flush with the end, with
 * neighbours at most window·(1 − overlap) apart.
 */
export function windowStarts(size: number, window: number, overlap: number): number[] {
  if (!(overlap >= 0 && overlap < 1)) throw new RangeError(`overlap must be in [0, 1), got ${overlap}`);
  if (size <= window) return [0];
  const maxStep = Math.max(1, Math.floor(window * (1 - overlap)));
  const steps = Math.ceil((size - window) / maxStep) + 1;
  const actual = (size - window) / (steps - 1);
  return Array.from({ length: steps }, (_, i) => Math.round(actual * i));
}

const roundUp4 = (n: number) => Math.ceil(n / 4) * 4;

export function planWindows(grid: Shape3, window: number, overlap: number): WindowPlan {
  if (!Number.isInteger(window) || window < 4 || window % 4 !== 0)
    throw new RangeError(
      `window must be a positive multiple of 4 (two stride-2 downsamplings), got ${window}`,
    );
  const w = grid.map((n) => Math.min(window, roundUp4(n))) as Shape3;
  const starts = grid.map((n, a) => windowStarts(n, w[a]!, overlap)) as [number[], number[], number[]];
  return { grid, window: w, starts, count: starts[0].length * starts[1].length * starts[2].length };
}

/** Separable Gaussian weights over a window (seed order), σ = sigmaScale · edge, peak 1. */
export function gaussianImportance(window: Shape3, sigmaScale = 0.125): Float32Array {
  const axis = (n: number) => {
    const sigma = sigmaScale * n;
    const centre = (n - 1) / 2;
    return Float64Array.from({ length: n }, (_, i) => Math.exp(-(((i - centre) / sigma) ** 2) / 2));
  };
  const [gd, gh, gw] = window.map(axis) as [Float64Array, Float64Array, Float64Array];
  const peak = Math.max(...gd) * Math.max(...gh) * Math.max(...gw);
  const out = new Float32Array(window[0] * window[1] * window[2]);
  for (let d = 0, i = 0; d < window[0]; d++)
    for (let h = 0; h < window[1]; h++)
      for (let w = 0; w < window[2]; w++, i++) out[i] = (gd[d]! * gh[h]! * gw[w]!) / peak;
  return out;
}

export interface SlidingWindowOptions {
  /** Window edge (multiple of 4); axes shorter than it get a window of their length rounded up to 4. */
  window: number;
  /** Fraction of a window that neighbours share (default 0.5). */
  overlap?: number;
  classes: number;
  /** Windows per predictor call (default 1). */
  batchSize?: number;
  /** Image value outside the volume, for windows larger than an axis (default: the image minimum). */
  padValue?: number;
  /** Gaussian σ as a fraction of the window (default 0.125, as nnU-Net and MONAI). */
  sigmaScale?: number;
  onWindow?: (done: number, total: number) => void;
}

export interface SlidingWindowResult {
  /** Argmax class per voxel, seed order over the grid. */
  labels: Uint8Array;
  plan: WindowPlan;
  /** Bytes held by the slab accumulator. */
  accumulatorBytes: number;
}

function minimum(a: Float32Array): number {
  let m = Infinity;
  for (let i = 0; i < a.length; i++) if (a[i]! < m) m = a[i]!;
  return m;
}

/** Copies the window at (d0, h0, w0) into `out` (seed order), `pad` outside the grid. */
function extractWindow(
  image: Float32Array,
  grid: Shape3,
  start: Shape3,
  win: Shape3,
  pad: number,
  out: Float32Array,
  offset: number,
): void {
  const [D, H, W] = grid;
  const [d0, h0, w0] = start;
  const [wd, wh, ww] = win;
  const inW = Math.max(0, Math.min(ww, W - w0));
  for (let d = 0; d < wd; d++)
    for (let h = 0; h < wh; h++) {
      const o = offset + (d * wh + h) * ww;
      if (d0 + d >= D || h0 + h >= H) {
        out.fill(pad, o, o + ww);
        continue;
      }
      const src = ((d0 + d) * H + (h0 + h)) * W + w0;
      out.set(image.subarray(src, src + inW), o);
      if (inW < ww) out.fill(pad, o + inW, o + ww);
    }
}

/** Predicts every window and returns the argmax of the Gaussian-weighted sum of probabilities per voxel. */
export function slidingWindowArgmax(
  image: Float32Array,
  grid: Shape3,
  predict: WindowPredictor,
  options: SlidingWindowOptions,
): SlidingWindowResult {
  const [D, H, W] = grid;
  if (image.length !== D * H * W)
    throw new RangeError(`image has ${image.length} values; the grid ${grid.join('×')} needs ${D * H * W}`);
  const C = options.classes;
  if (!Number.isInteger(C) || C < 1 || C > 255) throw new RangeError(`classes must be 1..255, got ${C}`);
  const batchSize = options.batchSize ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const plan = planWindows(grid, options.window, options.overlap ?? 0.5);
  const win = plan.window;
  const [wd, wh, ww] = win;
  const winVoxels = wd * wh * ww;
  const weights = gaussianImportance(win, options.sigmaScale);
  const pad = options.padValue ?? minimum(image);
  const rowValues = H * W * C;
  const acc = new Float32Array(wd * rowValues);
  const labels = new Uint8Array(D * H * W);
  const batchImage = new Float32Array(batchSize * winVoxels);
  let done = 0;

  const accumulate = (probs: Float32Array, k: number, start: Shape3, base: number) => {
    const [d0, h0, w0] = start;
    for (let d = 0; d < wd && d0 + d < D; d++) {
      const row = (d0 + d - base) * rowValues;
      for (let h = 0; h < wh && h0 + h < H; h++) {
        const wIn = Math.min(ww, W - w0);
        let a = row + ((h0 + h) * W + w0) * C;
        let g = (d * wh + h) * ww;
        let p = (k * winVoxels + g) * C;
        for (let w = 0; w < wIn; w++, g++) {
          const weight = weights[g]!;
          for (let c = 0; c < C; c++) acc[a++]! += weight * probs[p++]!;
        }
      }
    }
  };

  const dStarts = plan.starts[0];
  dStarts.forEach((d0, i) => {
    const batch: Shape3[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const n = batch.length;
      const probs = predict(batchImage.subarray(0, n * winVoxels), win, n);
      if (probs.length !== n * winVoxels * C)
        throw new RangeError(`the predictor returned ${probs.length} values; expected ${n * winVoxels * C}`);
      batch.forEach((start, k) => accumulate(probs, k, start, d0));
      done += n;
      options.onWindow?.(done, plan.count);
      batch.length = 0;
    };
    for (const h0 of plan.starts[1])
      for (const w0 of plan.starts[2]) {
        const start: Shape3 = [d0, h0, w0];
        extractWindow(image, grid, start, win, pad, batchImage, batch.length * winVoxels);
        batch.push(start);
        if (batch.length === batchSize) flush();
      }
    flush();
    // Rows before the next start are final: no later window reaches them.
    const next = i + 1 < dStarts.length ? dStarts[i + 1]! : D;
    for (let d = d0; d < next; d++) {
      const row = (d - d0) * rowValues;
      for (let v = 0; v < H * W; v++) {
        let best = 0;
        let bestValue = acc[row + v * C]!;
        for (let c = 1; c < C; c++) {
          const value = acc[row + v * C + c]!;
          if (value > bestValue) {
            bestValue = value;
            best = c;
          }
        }
        labels[d * H * W + v] = best;
      }
    }
    const shift = Math.min(next - d0, wd);
    acc.copyWithin(0, shift * rowValues);
    acc.fill(0, (wd - shift) * rowValues);
  });
  return { labels, plan, accumulatorBytes: acc.byteLength };
}
