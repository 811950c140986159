// Liver-crop refinement: both presets train on a cube centred on the liver, so a model has never seen the rest of the
// volume, and over it a whole-volume sliding window over-segments. The sliding window's labels only locate the liver;
// the cube the trainer would have cut around that centre is then predicted as one window, as in training, and the
// centre re-derived from that prediction until it settles. A liver longer than the cube along z (a CT with more slices
// than the training's forced count, a thin-slice CT) would lose slices to the cube's faces, so where the refined liver
// reaches a z face and the sliding window saw liver beyond it, the region grows on that side to where the sliding
// window's liver ends, and is predicted as overlapping cube-size windows blended like the sliding window. In-plane the
// cube stays the trainer's: growing there too re-predicted the whole grid whenever the sliding window over-segmented
// (28 crop windows instead of 4 on the seed's 256³ grid), for livers the trainer itself cut at the cube's faces.
import { cubeCropStart, liverCentre } from '@lits-ddp/lits-data';
import { slidingWindowArgmax, type Shape3, type WindowPredictor } from './sliding-window.js';

/**
 * lits-data's liverCentre (per axis the middle of the first and last slab labelled ≥ 1) on a seed-order grid: seed
 * order [D, H, W] (w fastest) is the same memory as NIfTI order [W, H, D] (its x fastest), so only the axes swap.
 */
export function labelCentre(labels: Uint8Array, [D, H, W]: Shape3): Shape3 | null {
  const c = liverCentre({ data: labels, shape: [W, H, D] });
  return c ? [c[2], c[1], c[0]] : null;
}

/** The first and last slab (inclusive) holding a label ≥ 1 along each axis of a seed-order grid; null when none. */
export function labelBox(labels: Uint8Array, [D, H, W]: Shape3): { lo: Shape3; hi: Shape3 } | null {
  const lo: Shape3 = [Infinity, Infinity, Infinity];
  const hi: Shape3 = [-1, -1, -1];
  for (let d = 0, i = 0; d < D; d++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++, i++)
        if (labels[i]! >= 1) {
          if (d < lo[0]) lo[0] = d;
          if (d > hi[0]) hi[0] = d;
          if (h < lo[1]) lo[1] = h;
          if (h > hi[1]) hi[1] = h;
          if (w < lo[2]) lo[2] = w;
          if (w > hi[2]) hi[2] = w;
        }
  return hi[0] < 0 ? null : { lo, hi };
}

/** The training cube's start for a centre (lits-data's cubeCropStart for a cube of `size`³). */
export function cubeStart(centre: Shape3, size: number): Shape3 {
  return cubeCropStart(centre, [size, size, size]);
}

/** The box [start, start + size) of a seed-order grid, 0 past the end, as the trainer cut its cubes. */
export function cropBox(image: Float32Array, shape: Shape3, start: Shape3, size: Shape3): Float32Array {
  const [, H, W] = shape;
  const out = new Float32Array(size[0] * size[1] * size[2]);
  const [dEnd, hEnd, wEnd] = shape.map((n, a) => Math.max(0, Math.min(size[a]!, n - start[a]!)));
  for (let d = 0; d < dEnd!; d++)
    for (let h = 0; h < hEnd!; h++) {
      const from = ((start[0] + d) * H + start[1] + h) * W + start[2];
      out.set(image.subarray(from, from + wEnd!), (d * size[1] + h) * size[2]);
    }
  return out;
}

/** The cube [start, start + size)³ of a seed-order grid, 0 past the end, as the trainer cut it. */
export function cropGrid(image: Float32Array, shape: Shape3, start: Shape3, size: number): Float32Array {
  return cropBox(image, shape, start, [size, size, size]);
}

export interface LiverCropOptions {
  /** The training cube edge. */
  size: number;
  classes: number;
  /**
   * Cube predictions at most (default 3); it stops earlier once the centre moves by ≤ 1 voxel per axis. Growing the
   * region is one more prediction.
   */
  maxRounds?: number;
  /** Overlap of the windows of a grown region (default 0.5, as the sliding window). */
  overlap?: number;
  /** Windows per predictor call in a grown region (default 1). */
  batchSize?: number;
  /** Grid axes along which the region may grow (default [2]: z, the slice axis of both presets' grids). */
  growAxes?: ReadonlyArray<0 | 1 | 2>;
}

export interface LiverCropResult {
  /** Labels over the whole grid: the last crop's argmax inside its region, background outside. */
  labels: Uint8Array;
  /** The centre of each round, the first from the sliding window's labels. */
  centres: Shape3[];
  /** The last region predicted: the training cube, or larger along the axes where it grew. */
  start: Shape3;
  /** Exclusive end of that region (start + size along the axes where it did not grow; may pass the grid's end). */
  end: Shape3;
  /** Predictions of a cube or a grown region. */
  rounds: number;
  /** Cube-size windows predicted over all rounds. */
  windows: number;
}

/** Argmax labels of one region over the whole grid; a region of one cube is one window, as in training. */
function predictRegion(
  image: Float32Array,
  shape: Shape3,
  start: Shape3,
  end: Shape3,
  predict: WindowPredictor,
  options: LiverCropOptions,
): { labels: Uint8Array; windows: number } {
  const { size, classes } = options;
  const box = end.map((e, a) => e - start[a]!) as Shape3;
  const crop = cropBox(image, shape, start, box);
  let boxLabels: Uint8Array;
  let windows = 1;
  if (box.every((n) => n === size)) {
    const probs = predict(crop, box, 1);
    boxLabels = new Uint8Array(size * size * size);
    for (let v = 0; v < boxLabels.length; v++) {
      let best = 0;
      for (let k = 1; k < classes; k++) if (probs[v * classes + k]! > probs[v * classes + best]!) best = k;
      boxLabels[v] = best;
    }
  } else {
    // Every side of the box is ≥ size, so every window is a full cube and the pad value is never used.
    const tiled = slidingWindowArgmax(crop, box, predict, {
      window: size,
      overlap: options.overlap ?? 0.5,
      classes,
      batchSize: options.batchSize ?? 1,
    });
    boxLabels = tiled.labels;
    windows = tiled.plan.count;
  }
  const [, H, W] = shape;
  const labels = new Uint8Array(shape[0] * H * W);
  const [dEnd, hEnd, wEnd] = shape.map((n, a) => Math.min(box[a]!, n - start[a]!));
  for (let d = 0; d < dEnd!; d++)
    for (let h = 0; h < hEnd!; h++) {
      const from = (d * box[1] + h) * box[2];
      labels.set(boxLabels.subarray(from, from + wEnd!), ((start[0] + d) * H + start[1] + h) * W + start[2]);
    }
  return { labels, windows };
}

/**
 * The region grown, on each side where the predicted liver reaches its face inside the grid and the sliding window's
 * liver goes on past it, to where that liver ends; null when no side grows.
 */
function grownRegion(
  box: { lo: Shape3; hi: Shape3 },
  located: { lo: Shape3; hi: Shape3 },
  start: Shape3,
  end: Shape3,
  shape: Shape3,
  axes: ReadonlyArray<0 | 1 | 2>,
): { start: Shape3; end: Shape3 } | null {
  const next = { start: [...start] as Shape3, end: [...end] as Shape3 };
  let grew = false;
  for (const a of axes) {
    if (box.lo[a] === start[a] && located.lo[a]! < start[a]!) {
      next.start[a] = located.lo[a]!;
      grew = true;
    }
    const last = Math.min(end[a]!, shape[a]!) - 1;
    if (box.hi[a] === last && located.hi[a]! > last) {
      next.end[a] = located.hi[a]! + 1;
      grew = true;
    }
  }
  return grew ? next : null;
}

/** Refines whole-grid `located` labels by predicting the liver-centred training cube; null when no liver was found. */
export function refineOnLiverCrop(
  image: Float32Array,
  shape: Shape3,
  located: Uint8Array,
  predict: WindowPredictor,
  options: LiverCropOptions,
): LiverCropResult | null {
  const { size } = options;
  const maxRounds = options.maxRounds ?? 3;
  const locatedBox = labelBox(located, shape);
  let centre = labelCentre(located, shape);
  if (!centre || !locatedBox) return null;
  const centres: Shape3[] = [centre];
  let labels = located;
  let start = cubeStart(centre, size);
  let end = start.map((s) => s + size) as Shape3;
  let rounds = 0;
  let windows = 0;
  const run = () => {
    const predicted = predictRegion(image, shape, start, end, predict, options);
    labels = predicted.labels;
    windows += predicted.windows;
    rounds++;
    return labelBox(labels, shape);
  };
  // As the trainer: the cube around the centre, re-centred on its own prediction until the centre settles.
  let box = run();
  while (box) {
    const next = labelCentre(labels, shape)!;
    const settled = next.every((c, a) => Math.abs(c - centre![a]!) <= 1);
    centre = next;
    centres.push(next);
    if (settled || rounds >= maxRounds) break;
    start = cubeStart(centre, size);
    end = start.map((s) => s + size) as Shape3;
    box = run();
  }
  // Then grow where the cube cut the liver off, in one step to where the sliding window's liver ends: one more
  // prediction (growing half a window at a time re-predicted the whole region each round: 136 windows against the
  // sliding window's 63 on a 32 × 32 × 60 grid when growing along every axis).
  const region = box && grownRegion(box, locatedBox, start, end, shape, options.growAxes ?? [2]);
  if (region) {
    ({ start, end } = region);
    run();
  }
  return { labels, centres, start, end, rounds, windows };
}
