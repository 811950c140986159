// `lits predict` for one volume: check where it writes → read → NaN/Inf check → training preprocessing without the
// liver crop, over every slice → sliding windows → argmax → liver-crop refinement → optional largest component →
// back to the source grid → uint8 NIfTI with the source geometry (+ overlay PNG).
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  labelToSourceGrid,
  readNifti,
  scalingOf,
  shape3,
  writeNifti,
  LitsDataError,
  type NiftiTransform,
} from '@lits-ddp/lits-data';
import { keepLargestComponent, type ComponentReport } from './largest-component.js';
import { loadPredictor, type Predictor } from './model-source.js';
import type { NonFiniteFill } from './non-finite.js';
import { checkOutputFile, writingTo } from './output-path.js';
import { writeOverlay, type CtVolume, type OverlayOptions } from './overlay.js';
import { predictGrid, type LiverCropSummary } from './predict-grid.js';
import type { Shape3, WindowPredictor } from './sliding-window.js';
import { prepareForPrediction } from './whole-volume.js';

export type PredictPhase = 'read' | 'preprocess' | 'windows' | 'postprocess' | 'write' | 'overlay';

export interface PredictProgress {
  input: string;
  phase: PredictPhase;
  done?: number;
  total?: number;
}

export interface PredictVolumeOptions {
  /** A loaded predictor, or a run / checkpoint folder to load (with `engine`). */
  model: Predictor | string;
  engine?: string;
  /** CT volume (.nii, .nii.gz, .hdr/.img). */
  input: string;
  /** Mask to write (.nii or .nii.gz, else an `OutputPathError`); missing parent folders are created. */
  output: string;
  /** PNG of a few axial slices with the prediction. */
  overlay?: string;
  overlayOptions?: OverlayOptions;
  /** Keep only the largest 6-connected piece of the foreground (label ≥ 1). */
  largestComponent?: boolean;
  /** Fraction of a window shared with its neighbours (default 0.5). */
  overlap?: number;
  /** Window edge on the preprocessed grid (default: the training cube size). */
  window?: number;
  /** Windows per forward pass (default 1). */
  batchSize?: number;
  /**
   * Re-predict the training cube around the liver the sliding window found (default true): the model only ever saw
   * liver-centred cubes. False keeps the whole-volume sliding-window labels.
   */
  liverCrop?: boolean;
  /**
   * Replace NaN / ±Inf voxels by the volume minimum (reported through `onWarning` and `nonFinite`) instead of refusing
   * the CT with a `NonFiniteVoxelsError` (default false): either way never a silently empty mask.
   */
  nanFill?: boolean;
  onProgress?: (p: PredictProgress) => void;
  /** Something the caller should tell the user, as one line naming the input (e.g. filled NaN voxels). */
  onWarning?: (message: string) => void;
}

export interface PredictVolumeResult {
  input: string;
  output: string;
  overlay: string | null;
  sourceShape: Shape3;
  /** The preprocessed grid the windows ran over (seed order). */
  grid: Shape3;
  window: Shape3;
  windows: number;
  /**
   * The liver-crop refinement: its last region on the grid (the training cube, or longer where the liver ran past
   * it), its predictions and windows; null when off or no liver.
   */
  liverCrop: LiverCropSummary | null;
  /** NaN / ±Inf voxels replaced with `nanFill` (count and the value they got), or null. */
  nonFinite: NonFiniteFill | null;
  /** Source-grid voxels predicted as liver (label ≥ 1) and tumour (label 2). */
  voxels: { liver: number; tumour: number };
  largestComponent: ComponentReport | null;
  timingsMs: Record<PredictPhase, number>;
}

function countLabels(mask: Uint8Array): { liver: number; tumour: number } {
  let liver = 0;
  let tumour = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i]!;
    if (v >= 1) liver++;
    if (v === 2) tumour++;
  }
  return { liver, tumour };
}

type Progress = (phase: PredictPhase, done?: number, total?: number) => void;

/** Reads the CT (kept only for an overlay) and preprocesses it; the source voxels are freed when this returns. */
async function readAndPrepare(
  options: PredictVolumeOptions,
  predictor: Predictor,
  progress: Progress,
  lap: Progress,
) {
  const { input } = options;
  progress('read');
  const source = await readNifti(input, { native: true });
  const sourceShape = shape3(source.shape);
  if (!sourceShape)
    throw new LitsDataError(
      input,
      `${source.shape.length}-D image (shape ${source.shape.join('×')}); need a 3-D CT volume`,
    );
  const header: { shape: number[]; transform: NiftiTransform } = {
    shape: source.shape,
    transform: source.transform,
  };
  lap('read');
  progress('preprocess');
  const whole = await prepareForPrediction(source, predictor.preprocessing, {
    nanFill: options.nanFill === true,
  });
  if (whole.nonFinite)
    options.onWarning?.(
      `${input}: ${whole.nonFinite.voxels} NaN/±Inf voxels replaced by the volume minimum ${whole.nonFinite.value}`,
    );
  // After the fill, so an overlay shows what the model saw.
  const ct: CtVolume | null = options.overlay
    ? { data: source.data, shape: sourceShape, affine: source.affine, scale: scalingOf(source) }
    : null;
  lap('preprocess');
  return { header, ct, sourceShape, whole };
}

/** Label per voxel of the preprocessed grid; the grid image is freed when this returns. */
async function predictLabels(
  predictor: Predictor,
  options: PredictVolumeOptions,
  progress: Progress,
  lap: Progress,
) {
  const { whole, ...rest } = await readAndPrepare(options, predictor, progress, lap);
  const { model } = predictor;
  const predict: WindowPredictor = (image, shape, batch) => model.predictProbabilities(image, shape, batch);
  const predicted = predictGrid(whole.image, whole.shape, predict, {
    window: options.window ?? predictor.window,
    cubeSize: predictor.preprocessing.cubeSize,
    classes: predictor.classes,
    overlap: options.overlap ?? 0.5,
    batchSize: options.batchSize ?? 1,
    liverCrop: options.liverCrop !== false,
    onWindow: (done, total) => progress('windows', done, total),
  });
  lap('windows');
  return {
    ...rest,
    ...predicted,
    nonFinite: whole.nonFinite,
    geometry: whole.geometry,
    grid: whole.shape,
  };
}

/** Predicts one volume; memory stays near one source volume + one source-size uint8 mask + the grid (see README). */
export async function predictVolume(options: PredictVolumeOptions): Promise<PredictVolumeResult> {
  const predictor =
    typeof options.model === 'string'
      ? await loadPredictor({ model: options.model, ...(options.engine ? { engine: options.engine } : {}) })
      : options.model;
  const { input } = options;
  const timings: Record<PredictPhase, number> = {
    read: 0,
    preprocess: 0,
    windows: 0,
    postprocess: 0,
    write: 0,
    overlay: 0,
  };
  let t = performance.now();
  const lap = (phase: PredictPhase) => {
    const now = performance.now();
    timings[phase] = now - t;
    t = now;
  };
  const progress = (phase: PredictPhase, done?: number, total?: number) =>
    options.onProgress?.({ input, phase, ...(done === undefined ? {} : { done, total }) });

  // Before the read: a wrong --out should fail in milliseconds, not after minutes of windows.
  await checkOutputFile(options.output, 'the mask', { nifti: true });
  if (options.overlay) await checkOutputFile(options.overlay, 'the overlay');
  const { header, ct, sourceShape, labels, geometry, grid, plan, liverCrop, nonFinite } = await predictLabels(
    predictor,
    options,
    progress,
    lap,
  );

  progress('postprocess');
  const components = options.largestComponent ? keepLargestComponent(labels, grid) : null;
  const mask = labelToSourceGrid(labels, geometry);
  lap('postprocess');

  progress('write');
  await writingTo(options.output, 'the mask', async () => {
    await mkdir(dirname(options.output), { recursive: true });
    await writeNifti(options.output, {
      shape: header.shape,
      data: mask,
      transform: header.transform,
      description: 'lits-ddp prediction: 0 background, 1 liver, 2 tumour',
    });
  });
  lap('write');

  if (options.overlay && ct) {
    progress('overlay');
    const overlay = options.overlay;
    await writingTo(overlay, 'the overlay', () => writeOverlay(overlay, ct, mask, options.overlayOptions));
    lap('overlay');
  }
  return {
    input,
    output: options.output,
    overlay: options.overlay ?? null,
    sourceShape,
    grid,
    window: plan.window,
    windows: plan.count,
    liverCrop,
    nonFinite,
    voxels: countLabels(mask),
    largestComponent: components,
    timingsMs: timings,
  };
}
