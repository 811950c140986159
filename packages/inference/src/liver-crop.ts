// Liver-crop refinement: both presets train on a cube centred on the liver, so a model has never seen the rest of the
// volume, and over it a whole-volume sliding window over-segments. The sliding window's labels only locate the liver;
// the cube the trainer would have cut around that centre is then predicted as one window, as in training, and the
// centre re-derived from that prediction until it settles.
import { cubeCropStart, liverCentre } from '@lits-ddp/lits-data';
import type { Shape3, WindowPredictor } from './sliding-window.js';

/**
 * lits-data's liverCentre (per axis the middle of the first and last slab labelled ≥ 1) on a seed-order grid: seed
 * order [D, H, W] (w fastest) is the same memory as NIfTI order [W, H, D] (its x fastest), so only the axes swap.
 */
export function labelCentre(labels: Uint8Array, [D, H, W]: Shape3): Shape3 | null {
  const c = liverCentre({ data: labels, shape: [W, H, D] });
  return c ? [c[2], c[1], c[0]] : null;
}

/** The training cube's start for a centre (lits-data's cubeCropStart for a cube of `size`³). */
export function cubeStart(centre: Shape3, size: number): Shape3 {
  return cubeCropStart(centre, [size, size, size]);
}

/** The cube [start, start + size)³ of a seed-order grid, 0 past the end, as the trainer cut it. */
export function cropGrid(image: Float32Array, shape: Shape3, start: Shape3, size: number): Float32Array {
  const [, H, W] = shape;
  const out = new Float32Array(size * size * size);
  const [dEnd, hEnd, wEnd] = shape.map((n, a) => Math.max(0, Math.min(size, n - start[a]!)));
  for (let d = 0; d < dEnd!; d++)
    for (let h = 0; h < hEnd!; h++) {
      const from = ((start[0] + d) * H + start[1] + h) * W + start[2];
      out.set(image.subarray(from, from + wEnd!), (d * size + h) * size);
    }
  return out;
}

export interface LiverCropOptions {
  /** The training cube edge. */
  size: number;
  classes: number;
  /** Crop predictions after the first; it stops earlier once the centre moves by ≤ 1 voxel per axis. Default 3. */
  maxRounds?: number;
}

export interface LiverCropResult {
  /** Labels over the whole grid: the last crop's argmax inside the cube, background outside. */
  labels: Uint8Array;
  /** The centre of each round, the first from the sliding window's labels. */
  centres: Shape3[];
  start: Shape3;
  rounds: number;
}

/** Refines whole-grid `located` labels by predicting the liver-centred training cube; null when no liver was found. */
export function refineOnLiverCrop(
  image: Float32Array,
  shape: Shape3,
  located: Uint8Array,
  predict: WindowPredictor,
  options: LiverCropOptions,
): LiverCropResult | null {
  const { size, classes } = options;
  const maxRounds = options.maxRounds ?? 3;
  let centre = labelCentre(located, shape);
  if (!centre) return null;
  const centres: Shape3[] = [centre];
  const [, H, W] = shape;
  let labels = located;
  let start = cubeStart(centre, size);
  let rounds = 0;
  while (rounds < maxRounds) {
    start = cubeStart(centre, size);
    const probs = predict(cropGrid(image, shape, start, size), [size, size, size], 1);
    labels = new Uint8Array(located.length);
    const [dEnd, hEnd, wEnd] = shape.map((n, a) => Math.min(size, n - start[a]!));
    for (let d = 0; d < dEnd!; d++)
      for (let h = 0; h < hEnd!; h++)
        for (let w = 0; w < wEnd!; w++) {
          const p = ((d * size + h) * size + w) * classes;
          let best = 0;
          for (let k = 1; k < classes; k++) if (probs[p + k]! > probs[p + best]!) best = k;
          labels[((start[0] + d) * H + start[1] + h) * W + start[2] + w] = best;
        }
    rounds++;
    const next = labelCentre(labels, shape);
    if (!next) break;
    const settled = next.every((c, a) => Math.abs(c - centre![a]!) <= 1);
    centre = next;
    centres.push(next);
    if (settled) break;
  }
  return { labels, centres, start, rounds };
}
