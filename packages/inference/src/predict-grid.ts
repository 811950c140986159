// Labels over a preprocessed grid from any window predictor: the whole-grid sliding window, then the liver-crop
// refinement. Apart from files and models, so the coverage of every slice can be checked with a known predictor.
import { refineOnLiverCrop } from './liver-crop.js';
import { slidingWindowArgmax, type Shape3, type WindowPlan, type WindowPredictor } from './sliding-window.js';

export interface PredictGridOptions {
  /** Window edge of the sliding window (multiple of 4). */
  window: number;
  /** The training cube edge; the liver crop predicts cubes of this size. */
  cubeSize: number;
  classes: number;
  /** Fraction of a window shared with its neighbours (default 0.5), for the sliding window and a grown liver crop. */
  overlap?: number;
  batchSize?: number;
  /** Refine on the liver-centred training cube (default true). */
  liverCrop?: boolean;
  onWindow?: (done: number, total: number) => void;
}

export interface LiverCropSummary {
  /** The last region predicted on the grid: the training cube, or larger where the liver ran past it. */
  start: Shape3;
  end: Shape3;
  size: number;
  rounds: number;
  windows: number;
  centres: Shape3[];
}

export interface PredictGridResult {
  /** Seed order over the grid. */
  labels: Uint8Array;
  plan: WindowPlan;
  liverCrop: LiverCropSummary | null;
}

export function predictGrid(
  image: Float32Array,
  shape: Shape3,
  predict: WindowPredictor,
  options: PredictGridOptions,
): PredictGridResult {
  const overlap = options.overlap ?? 0.5;
  const batchSize = options.batchSize ?? 1;
  const located = slidingWindowArgmax(image, shape, predict, {
    window: options.window,
    overlap,
    classes: options.classes,
    batchSize,
    ...(options.onWindow ? { onWindow: options.onWindow } : {}),
  });
  const size = options.cubeSize;
  const refined =
    options.liverCrop === false
      ? null
      : refineOnLiverCrop(image, shape, located.labels, predict, {
          size,
          classes: options.classes,
          overlap,
          batchSize,
        });
  return {
    labels: refined?.labels ?? located.labels,
    plan: located.plan,
    liverCrop: refined
      ? {
          start: refined.start,
          end: refined.end,
          size,
          rounds: refined.rounds,
          windows: refined.windows,
          centres: refined.centres,
        }
      : null,
  };
}
