// Per-channel ops with hand-written gradients. Channels-last lets every broadcast be a trailing [C] one and every
// reduction a [1, V]·[V, C] matMul: the tfjs cpu backend runs both fast, while its generic broadcast and
// leading-axis reductions (what autodiff of x + bias or tf.moments produces) walk indices element by element.
// Every op here also runs on TensorFlow's kernels (tfjs-node, tfjs-node-gpu): ranks stay ≤ 5, broadcasts collapse
// to ≤ 5 dimensions, and nothing relies on a fused kernel that only takes 4-D input (FusedBatchNorm).
import type * as tfjs from '@tensorflow/tfjs';
import type { Tfjs } from './engine.js';

type Tensor = tfjs.Tensor;
type Tensor1D = tfjs.Tensor1D;
type Tensor5D = tfjs.Tensor5D;

/** Σ over every axis but the last: [..., C] → [C]. */
export function channelSum(tf: Tfjs, t: Tensor): Tensor1D {
  const c = t.shape[t.rank - 1] as number;
  const rows = t.size / c;
  return tf.reshape(tf.matMul(tf.ones([1, rows]), tf.reshape(t, [rows, c])), [c]);
}

/** x + bias[C], with d bias = channelSum(dy). */
export function addBias(tf: Tfjs, x: Tensor5D, bias: Tensor1D): Tensor5D {
  const op = tf.customGrad((...args) => {
    const [xs, b] = args as [Tensor5D, Tensor1D];
    return {
      value: tf.add(xs, b),
      gradFunc: (dy: Tensor) => [dy, channelSum(tf, dy)],
    };
  });
  return op(x, bias) as Tensor5D;
}

export interface TrainBatchNormResult {
  readonly y: Tensor5D;
  readonly mean: Tensor1D;
  /** Biased (÷V) variance. */
  readonly variance: Tensor1D;
  /** Values per channel V = N·D·H·W. */
  readonly count: number;
}

/**
 * Training-mode BatchNorm with the micro-batch's own statistics: y = (x − μ)/√(σ² + eps)·γ + β.
 * Backward: dx = (γ·dy − mean(γ·dy) − x̂·mean(γ·dy·x̂))/√(σ² + eps); dγ = Σ dy·x̂; dβ = Σ dy.
 * `mean` and `variance` come back as kept tensors the caller disposes.
 */
export function batchNormTrain(
  tf: Tfjs,
  x: Tensor5D,
  gamma: Tensor1D,
  beta: Tensor1D,
  epsilon: number,
): TrainBatchNormResult {
  const c = x.shape[4];
  const count = x.size / c;
  let mean: Tensor1D | null = null;
  let variance: Tensor1D | null = null;
  const op = tf.customGrad((...args) => {
    const [xs, g, b, save] = args as [Tensor5D, Tensor1D, Tensor1D, tfjs.GradSaveFunc];
    const x2 = tf.reshape(xs, [count, c]);
    const mu = tf.div(channelSum(tf, x2), count) as Tensor1D;
    const centred = tf.sub(x2, mu);
    const sigma2 = tf.div(channelSum(tf, tf.square(centred)), count) as Tensor1D;
    const invStd = tf.rsqrt(tf.add(sigma2, epsilon));
    const xHat = tf.mul(centred, invStd);
    mean = tf.keep(mu);
    variance = tf.keep(sigma2);
    save([xHat, invStd, g]);
    return {
      value: tf.reshape(tf.add(tf.mul(xHat, g), b), xs.shape),
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [xh, inv, gm] = saved as [Tensor, Tensor1D, Tensor1D];
        const dy2 = tf.reshape(dy, [count, c]);
        const dBeta = channelSum(tf, dy2);
        const dGamma = channelSum(tf, tf.mul(dy2, xh));
        const meanDxHat = tf.div(tf.mul(dBeta, gm), count);
        const meanDxHatXHat = tf.div(tf.mul(dGamma, gm), count);
        const dx = tf.mul(tf.sub(tf.sub(tf.mul(dy2, gm), meanDxHat), tf.mul(xh, meanDxHatXHat)), inv);
        return [tf.reshape(dx, dy.shape), dGamma, dBeta];
      },
    };
  });
  const y = op(x, gamma, beta) as Tensor5D;
  if (!mean || !variance) throw new Error('batchNormTrain: statistics were not produced');
  return { y, mean, variance, count };
}

/**
 * Channel-wise mask [N·C] as a tensor that multiplies x [N, D, H, W, C] on a fast path: a trailing [C] broadcast
 * for one sample, an exact outer product with ones (1·m) expanded to x's shape for several.
 */
export function channelMask(tf: Tfjs, mask: Float32Array, shape: readonly number[]): Tensor {
  const [n, d, h, w, c] = shape as [number, number, number, number, number];
  if (n === 1) return tf.tensor1d(mask);
  const expanded = tf.matMul(tf.ones([n, d * h * w, 1]), tf.tensor3d(mask, [n, 1, c]));
  return tf.reshape(expanded, [n, d, h, w, c]);
}

/**
 * Eval-mode BatchNorm with running statistics, folded per channel as PyTorch's CPU inference kernel does:
 * y = x·s + (β − μ·s) with s = γ/√(σ² + eps). (tf.batchNorm maps to FusedBatchNorm on TensorFlow, which takes 4-D
 * input only.)
 */
export function batchNormEval(
  tf: Tfjs,
  x: Tensor5D,
  running: { readonly mean: Tensor1D; readonly variance: Tensor1D },
  gamma: Tensor1D,
  beta: Tensor1D,
  epsilon: number,
): Tensor5D {
  const scale = tf.mul(gamma, tf.rsqrt(tf.add(running.variance, epsilon)));
  const shift = tf.sub(beta, tf.mul(running.mean, scale));
  return tf.add(tf.mul(x, scale), shift);
}

/** Doubles axis 1 of a [A, B, …] view: [A, 1, B] → [A, 2, B] as a concat of two copies. */
function doubleAxis(tf: Tfjs, x: Tensor, a: number, b: number): Tensor {
  const v = tf.reshape(x, [a, 1, b]);
  return tf.concat([v, v], 1);
}

/** Σ over the pairs that doubleAxis made: [A, 2, B] → [A, B]. A sum of two is the same in either order. */
function sumPairs(tf: Tfjs, dy: Tensor, a: number, b: number): Tensor {
  return tf.sum(tf.reshape(dy, [a, 2, b]), 1);
}

/**
 * Nearest-neighbour ×2 upsampling of [N, D, H, W, C] (PyTorch's Upsample(scale_factor=2), mode 'nearest'): W, H
 * and D doubled in turn by rank-3 copies. The gradient sums each 2×2×2 block in a fixed tree of pairwise sums
 * (D pairs, then H, then W), so it has the same bits on every engine for the same dy.
 */
export function upsampleNearest(tf: Tfjs, x: Tensor5D): Tensor5D {
  const op = tf.customGrad((...args) => {
    const [xs] = args as [Tensor5D];
    const [n, d, h, w, c] = xs.shape;
    const wide = doubleAxis(tf, xs, n * d * h * w, c);
    const tall = doubleAxis(tf, wide, n * d * h, 2 * w * c);
    const deep = doubleAxis(tf, tall, n * d, 4 * h * w * c);
    return {
      value: tf.reshape(deep, [n, 2 * d, 2 * h, 2 * w, c]),
      gradFunc: (dy: Tensor) => {
        const dTall = sumPairs(tf, dy, n * d, 4 * h * w * c);
        const dWide = sumPairs(tf, dTall, n * d * h, 2 * w * c);
        return tf.reshape(sumPairs(tf, dWide, n * d * h * w, c), xs.shape);
      },
    };
  });
  return op(x) as Tensor5D;
}
