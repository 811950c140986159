// Losses on the network's outputs. The default is the seed's focal loss (seed.md §3), computed from probabilities.
import type * as tfjs from '@tensorflow/tfjs';
import type { Tfjs } from './engine.js';

export interface FocalLossConfig {
  readonly kind: 'focal';
  /** Normalised to sum to 1 (the seed's alpha). */
  readonly classWeights: readonly number[];
  readonly gamma: number;
  readonly smooth: number;
}

/** PyTorch CrossEntropyLoss(weight): Σ w_t·(−ln p_t) / Σ w_t, from the logits. */
export interface WeightedCrossEntropyConfig {
  readonly kind: 'weighted-ce';
  readonly classWeights: readonly number[];
}

/** Weighted cross-entropy + (1 − mean soft Dice over classes), Dice pooled over the micro-batch. */
export interface DiceCrossEntropyConfig {
  readonly kind: 'dice-ce';
  readonly classWeights: readonly number[];
  readonly diceSmooth: number;
}

export type LossConfig = FocalLossConfig | WeightedCrossEntropyConfig | DiceCrossEntropyConfig;
export type LossKind = LossConfig['kind'];

/** The paper runs' `--class-weights '0.2, 1.0, 2.5'`. */
export const SEED_CLASS_WEIGHTS: readonly number[] = Object.freeze([0.2, 1.0, 2.5]);

export const SEED_FOCAL_LOSS: FocalLossConfig = Object.freeze({
  kind: 'focal',
  classWeights: SEED_CLASS_WEIGHTS,
  gamma: 2,
  smooth: 1e-5,
});

/** A loss of the given kind with the seed's defaults for its fields. */
export function defaultLoss(
  kind: LossKind,
  classWeights: readonly number[] = SEED_CLASS_WEIGHTS,
): LossConfig {
  if (kind === 'focal') return { ...SEED_FOCAL_LOSS, classWeights };
  if (kind === 'weighted-ce') return { kind, classWeights };
  return { kind, classWeights, diceSmooth: 1e-5 };
}

export function validateLoss(loss: LossConfig, classes: number, source = 'loss'): LossConfig {
  if (!['focal', 'weighted-ce', 'dice-ce'].includes(loss.kind))
    throw new RangeError(`${source}.kind must be focal, weighted-ce or dice-ce, got ${String(loss.kind)}`);
  if (!Array.isArray(loss.classWeights) || loss.classWeights.length !== classes)
    throw new RangeError(`${source}.classWeights needs one weight per class (${classes})`);
  loss.classWeights.forEach((w, i) => {
    if (!(typeof w === 'number' && Number.isFinite(w) && w > 0))
      throw new RangeError(`${source}.classWeights[${i}] must be a positive number, got ${w}`);
  });
  if (loss.kind === 'focal') {
    if (!(loss.gamma >= 0 && Number.isFinite(loss.gamma)))
      throw new RangeError(`${source}.gamma must be ≥ 0`);
    if (!(loss.smooth >= 0 && loss.smooth < 0.5))
      throw new RangeError(`${source}.smooth must be in [0, 0.5)`);
  }
  if (loss.kind === 'dice-ce' && !(loss.diceSmooth >= 0))
    throw new RangeError(`${source}.diceSmooth must be ≥ 0`);
  return loss;
}

/** Parses the seed's `--class-weights` string ('0.2, 1.0, 2.5'). */
export function parseClassWeights(text: string, classes: number, source = '--class-weights'): number[] {
  const weights = text.split(',').map((s) => Number(s.trim()));
  if (weights.length !== classes || weights.some((w) => !(Number.isFinite(w) && w > 0)))
    throw new RangeError(`${source} '${text}' must be ${classes} positive comma-separated numbers`);
  return weights;
}

/** alpha / Σ alpha in float32, as the seed's FloatTensor arithmetic does. */
export function normalisedAlpha(weights: readonly number[]): Float32Array {
  const alpha = Float32Array.from(weights);
  let sum = 0;
  for (const a of alpha) sum = Math.fround(sum + a);
  return alpha.map((a) => Math.fround(a / sum));
}

function perVoxelClassWeights(labels: Uint8Array, weights: Float32Array): Float32Array {
  const out = new Float32Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = weights[labels[i] as number] as number;
  return out;
}

/** One-hot [voxels, classes] with `off` everywhere but `on` at the label. */
function oneHot(labels: Uint8Array, classes: number, on: number, off: number): Float32Array {
  const out = new Float32Array(labels.length * classes).fill(off);
  for (let i = 0; i < labels.length; i++) out[i * classes + (labels[i] as number)] = on;
  return out;
}

/**
 * The scalar loss of one micro-batch (mean over its voxels for focal and CE). `labels` is [N·D·H·W] in the same
 * voxel order as the outputs. Differentiable with respect to whatever produced `logits`/`probabilities`.
 */
export function lossTensor(
  tf: Tfjs,
  config: LossConfig,
  outputs: { readonly logits: tfjs.Tensor5D; readonly probabilities: tfjs.Tensor5D },
  labels: Uint8Array,
): tfjs.Scalar {
  const shape = outputs.probabilities.shape;
  const classes = shape[4];
  const voxelShape = shape.slice(0, 4) as [number, number, number, number];
  if (config.kind === 'focal') {
    // seed focal_loss.py: one-hot clamped to [smooth/(C−1), 1−smooth]; pt = Σ onehot·p + smooth.
    const hot = tf.tensor(
      oneHot(labels, classes, Math.fround(1 - config.smooth), Math.fround(config.smooth / (classes - 1))),
      shape,
    );
    const pt = tf.add(tf.sum(tf.mul(hot, outputs.probabilities), 4), config.smooth);
    const alpha = tf.tensor(perVoxelClassWeights(labels, normalisedAlpha(config.classWeights)), voxelShape);
    const oneMinus = tf.sub(1, pt);
    const focus = config.gamma === 2 ? tf.square(oneMinus) : tf.pow(oneMinus, config.gamma);
    return tf.neg(tf.mean(tf.mul(tf.mul(alpha, focus), tf.log(pt)))) as tfjs.Scalar;
  }
  const weights = Float32Array.from(config.classWeights);
  const hot = tf.tensor(oneHot(labels, classes, 1, 0), shape);
  const voxelWeights = perVoxelClassWeights(labels, weights);
  let weightSum = 0;
  for (const w of voxelWeights) weightSum += w;
  const nll = tf.neg(tf.sum(tf.mul(hot, tf.logSoftmax(outputs.logits)), 4));
  const ce = tf.div(tf.sum(tf.mul(tf.tensor(voxelWeights, voxelShape), nll)), weightSum) as tfjs.Scalar;
  if (config.kind === 'weighted-ce') return ce;
  const axes = [0, 1, 2, 3];
  const intersection = tf.sum(tf.mul(outputs.probabilities, hot), axes);
  const sizes = tf.add(tf.sum(outputs.probabilities, axes), tf.sum(hot, axes));
  const dice = tf.div(tf.add(tf.mul(intersection, 2), config.diceSmooth), tf.add(sizes, config.diceSmooth));
  return tf.add(ce, tf.sub(1, tf.mean(dice))) as tfjs.Scalar;
}
