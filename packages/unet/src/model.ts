// UNet3D with a data-parallel training step: flat gradients out, averaged gradients + BN statistics in.
import { createHash } from 'node:crypto';
import type * as tfjs from '@tensorflow/tfjs';
import {
  BN_MOMENTUM,
  SEED_ARCHITECTURE,
  unetLayout,
  type UNetArchitecture,
  type UNetLayout,
} from './architecture.js';
import { OrderedAverage } from './accumulate.js';
import { Adam, SEED_ADAM, validateAdamConfig, type AdamConfig } from './adam.js';
import { dropoutMask } from './dropout.js';
import type { Tfjs } from './engine.js';
import { initialRunningStats, initialWeights } from './init.js';
import { SEED_FOCAL_LOSS, lossTensor, validateLoss, type LossConfig } from './loss.js';
import { argmaxClasses, batchRecord, MetricCounts } from './metrics.js';
import {
  validateMicroBatch,
  validateStepKey,
  validateVolumeShape,
  type MicroBatch,
  type StepKey,
} from './micro-batch.js';
import { forwardUNet, type BatchMoments } from './network.js';
import { readSlot, tensorSlots, writeSlot } from './parameter-tensors.js';
import type { BlockName } from './topology.js';

export interface UNetConfig {
  readonly architecture: UNetArchitecture;
  readonly loss: LossConfig;
  readonly adam: AdamConfig;
}

export interface UNetOptions {
  /** Seeds the weight init: stream (seed, 'init', parameterName). */
  readonly seed: number | string;
  readonly architecture?: Partial<UNetArchitecture>;
  readonly loss?: LossConfig;
  readonly adam?: Partial<AdamConfig>;
}

/** Everything that defines a model's numbers; checkpoints store exactly this. */
export interface UNetState {
  readonly config: UNetConfig;
  readonly weights: Float32Array;
  /** Per BN layer in layout order: running mean [C] then running variance [C]. */
  readonly runningStats: Float32Array;
  readonly bnBatchesTracked: number;
  readonly adamStep: number;
  readonly adamM: Float32Array;
  readonly adamV: Float32Array;
}

export interface GradientResult {
  /** The micro-batch's mean loss. */
  readonly loss: number;
  /** One record keyed (batch = key.step, micro = key.microBatch), computed with dropout active like the seed. */
  readonly counts: MetricCounts;
  /** d loss / d parameters, flat in layout order. */
  readonly grads: Float32Array;
  /** Per BN layer in layout order: batch mean [C] then unbiased batch variance [C]. */
  readonly bnStats: Float32Array;
}

const f = Math.fround;

export class UNet3D {
  readonly layout: UNetLayout;
  readonly optimizer: Adam;
  private readonly weights: Float32Array;
  private readonly running: Float32Array;
  private batchesTracked: number;
  private lossConfig: LossConfig;
  private paramTensors: tfjs.Tensor[] | null = null;
  private runningTensors: BatchMoments[] | null = null;

  private constructor(
    private readonly tf: Tfjs,
    architecture: UNetArchitecture,
    loss: LossConfig,
    state: { weights: Float32Array; running: Float32Array; batches: number; adam: Adam },
  ) {
    this.layout = unetLayout(architecture);
    this.lossConfig = validateLoss(loss, architecture.classes);
    this.weights = state.weights;
    this.running = state.running;
    this.batchesTracked = state.batches;
    this.optimizer = state.adam;
  }

  /** A freshly initialised model (PyTorch default init from counter-rng). */
  static create(tf: Tfjs, options: UNetOptions): UNet3D {
    const architecture = { ...SEED_ARCHITECTURE, ...options.architecture };
    const layout = unetLayout(architecture);
    const adam = new Adam(layout.totalParams, validateAdamConfig({ ...SEED_ADAM, ...options.adam }));
    return new UNet3D(tf, architecture, options.loss ?? { ...SEED_FOCAL_LOSS }, {
      weights: initialWeights(layout, options.seed),
      running: initialRunningStats(layout),
      batches: 0,
      adam,
    });
  }

  /** Rebuilds a model from `state()` (e.g. a loaded checkpoint); `source` names it in errors. */
  static fromState(tf: Tfjs, state: UNetState, source = 'model state'): UNet3D {
    const layout = unetLayout(state.config.architecture);
    const expect = (name: string, got: number, want: number) => {
      if (got !== want)
        throw new RangeError(`${source}: ${name} holds ${got} values, the architecture needs ${want}`);
    };
    expect('weights', state.weights.length, layout.totalParams);
    expect('runningStats', state.runningStats.length, layout.bnStatsLength);
    if (!Number.isSafeInteger(state.bnBatchesTracked) || state.bnBatchesTracked < 0)
      throw new RangeError(`${source}: bnBatchesTracked must be a non-negative integer`);
    const adam = new Adam(layout.totalParams, state.config.adam, {
      step: state.adamStep,
      m: state.adamM,
      v: state.adamV,
    });
    return new UNet3D(tf, state.config.architecture, state.config.loss, {
      weights: Float32Array.from(state.weights),
      running: Float32Array.from(state.runningStats),
      batches: state.bnBatchesTracked,
      adam,
    });
  }

  get config(): UNetConfig {
    return { architecture: this.layout.architecture, loss: this.lossConfig, adam: this.optimizer.config };
  }

  get paramCount(): number {
    return this.layout.totalParams;
  }

  get blockParamCounts(): readonly { readonly name: BlockName; readonly params: number }[] {
    return this.layout.blocks;
  }

  get bnBatchesTracked(): number {
    return this.batchesTracked;
  }

  /** A copy of the flat parameters in layout order. */
  getWeights(): Float32Array {
    return Float32Array.from(this.weights);
  }

  /** A copy of the running statistics (mean, variance per BN layer). */
  getRunningStats(): Float32Array {
    return Float32Array.from(this.running);
  }

  private params(): tfjs.Tensor[] {
    if (!this.paramTensors) {
      const tf = this.tf;
      this.paramTensors = tensorSlots(this.layout).map((slot) =>
        tf.keep(tf.tensor(readSlot(slot, this.weights), [...slot.shape], 'float32')),
      );
    }
    return this.paramTensors;
  }

  private runningMoments(): BatchMoments[] {
    if (!this.runningTensors) {
      const tf = this.tf;
      this.runningTensors = this.layout.batchNorms.map((bn) => ({
        mean: tf.keep(tf.tensor1d(this.running.slice(bn.offset, bn.offset + bn.channels))),
        variance: tf.keep(
          tf.tensor1d(this.running.slice(bn.offset + bn.channels, bn.offset + 2 * bn.channels)),
        ),
      }));
    }
    return this.runningTensors;
  }

  private invalidate(): void {
    this.paramTensors?.forEach((t) => t.dispose());
    this.runningTensors?.forEach((m) => {
      m.mean.dispose();
      m.variance.dispose();
    });
    this.paramTensors = null;
    this.runningTensors = null;
  }

  private input(image: Float32Array, batch: number, shape: readonly [number, number, number]): tfjs.Tensor5D {
    return this.tf.tensor5d(image, [batch, ...shape, this.layout.architecture.inChannels]);
  }

  /** Forward + backward of one micro-batch in training mode (its own BN statistics, dropout keyed by `key`). */
  computeGradients(microBatch: MicroBatch, key: StepKey): GradientResult {
    const { inChannels, classes } = this.layout.architecture;
    validateMicroBatch(microBatch, inChannels, classes);
    validateStepKey(key);
    const { batch, shape } = microBatch;
    const deepest = batch * (shape[0] / 4) * (shape[1] / 4) * (shape[2] / 4);
    if (deepest < 2)
      throw new RangeError(
        `microBatch: training BatchNorm needs ≥ 2 values per channel at the deepest level; batch × (D/4)(H/4)(W/4) = ${deepest}`,
      );
    const tf = this.tf;
    const masks = this.layout.dropouts.map((d) =>
      d.rate > 0 ? dropoutMask(key, d.index, batch, d.channels, d.rate) : null,
    );
    const params = this.params();
    const x = this.input(microBatch.image, batch, shape);
    let kept: tfjs.Tensor[] = [];
    let valuesPerChannel: number[] = [];
    const { value, grads } = tf.valueAndGrads((...ps: tfjs.Tensor[]) => {
      const out = forwardUNet(tf, this.layout, ps, x, { kind: 'train', masks });
      kept = [out.probabilities, ...out.moments.flatMap((m) => [m.mean, m.variance])].map((t) => tf.keep(t));
      valuesPerChannel = out.moments.map((m) => m.count);
      return lossTensor(tf, this.lossConfig, out, microBatch.label);
    })(params);
    try {
      const flat = new Float32Array(this.layout.totalParams);
      tensorSlots(this.layout).forEach((slot, i) =>
        writeSlot(slot, (grads[i] as tfjs.Tensor).dataSync(), flat),
      );
      const bnStats = new Float32Array(this.layout.bnStatsLength);
      this.layout.batchNorms.forEach((bn, j) => {
        const mean = (kept[1 + 2 * j] as tfjs.Tensor).dataSync();
        const variance = (kept[2 + 2 * j] as tfjs.Tensor).dataSync();
        const n = valuesPerChannel[j] as number;
        bnStats.set(mean, bn.offset);
        for (let c = 0; c < bn.channels; c++)
          bnStats[bn.offset + bn.channels + c] = f(((variance[c] as number) * n) / (n - 1));
      });
      const loss = (value.dataSync() as Float32Array)[0] as number;
      const probabilities = (kept[0] as tfjs.Tensor).dataSync() as Float32Array;
      const record = batchRecord(argmaxClasses(probabilities, classes), microBatch.label, {
        batch: key.step,
        micro: key.microBatch,
        samples: batch,
        classes,
        loss,
      });
      return { loss, counts: MetricCounts.of(classes, [record]), grads: flat, bnStats };
    } finally {
      [x, value, ...grads, ...kept].forEach((t) => t.dispose());
    }
  }

  /**
   * One optimiser step: Adam with the already averaged gradient, then ONE momentum update of the BN running
   * statistics with `bnUpdate` (the step's average of bnStats).
   */
  applyGradients(flatGrads: Float32Array, bnUpdate: Float32Array): void {
    if (flatGrads.length !== this.layout.totalParams)
      throw new RangeError(
        `flatGrads has ${flatGrads.length} values, the model has ${this.layout.totalParams}`,
      );
    if (bnUpdate.length !== this.layout.bnStatsLength)
      throw new RangeError(`bnUpdate has ${bnUpdate.length} values, expected ${this.layout.bnStatsLength}`);
    for (let i = 0; i < flatGrads.length; i++) {
      if (!Number.isFinite(flatGrads[i])) {
        const p = this.layout.parameters.find((s) => i >= s.offset && i < s.offset + s.size);
        throw new RangeError(
          `gradient ${i} (${p?.name}[${i - (p?.offset ?? 0)}]) is not finite: ${flatGrads[i]}`,
        );
      }
    }
    for (let i = 0; i < bnUpdate.length; i++)
      if (!Number.isFinite(bnUpdate[i])) throw new RangeError(`bnUpdate[${i}] is not finite: ${bnUpdate[i]}`);
    this.optimizer.update(this.weights, flatGrads);
    const keep = f(1 - BN_MOMENTUM);
    const take = f(BN_MOMENTUM);
    for (let i = 0; i < this.running.length; i++)
      this.running[i] = f(f(keep * (this.running[i] as number)) + f(take * (bnUpdate[i] as number)));
    this.batchesTracked++;
    this.invalidate();
  }

  /**
   * A whole step on one process: micro-batches k = 0..K−1 in order, gradients and BN statistics averaged in that
   * order, then applyGradients. Returns the mean loss and the merged counts.
   */
  trainStep(
    microBatches: readonly MicroBatch[],
    key: Omit<StepKey, 'microBatch'>,
  ): { loss: number; counts: MetricCounts } {
    if (microBatches.length === 0) throw new RangeError('trainStep needs at least one micro-batch');
    const grads = new OrderedAverage(this.layout.totalParams);
    const stats = new OrderedAverage(this.layout.bnStatsLength);
    let counts = MetricCounts.empty(this.layout.architecture.classes);
    let loss = 0;
    microBatches.forEach((mb, k) => {
      const r = this.computeGradients(mb, { ...key, microBatch: k });
      grads.add(k, r.grads);
      stats.add(k, r.bnStats);
      counts = counts.merge(r.counts);
      loss += r.loss;
    });
    this.applyGradients(grads.mean(), stats.mean());
    return { loss: loss / microBatches.length, counts };
  }

  /** Eval mode (running statistics, no dropout): one record keyed (batch, micro), loss included. */
  evaluate(microBatch: MicroBatch, index: { batch: number; micro?: number }): MetricCounts {
    const { inChannels, classes } = this.layout.architecture;
    validateMicroBatch(microBatch, inChannels, classes);
    const micro = index.micro ?? 0;
    validateStepKey({ seed: 0, epoch: 0, step: index.batch, microBatch: micro }, 'evaluate index');
    const tf = this.tf;
    const [probabilities, loss] = tf.tidy(() => {
      const x = this.input(microBatch.image, microBatch.batch, microBatch.shape);
      const out = forwardUNet(tf, this.layout, this.params(), x, {
        kind: 'eval',
        running: this.runningMoments(),
      });
      return [out.probabilities, lossTensor(tf, this.lossConfig, out, microBatch.label)];
    });
    try {
      const probs = probabilities.dataSync() as Float32Array;
      const record = batchRecord(argmaxClasses(probs, classes), microBatch.label, {
        batch: index.batch,
        micro,
        samples: microBatch.batch,
        classes,
        loss: (loss.dataSync() as Float32Array)[0] as number,
      });
      return MetricCounts.of(classes, [record]);
    } finally {
      probabilities.dispose();
      loss.dispose();
    }
  }

  /** Eval-mode softmax probabilities [batch, D, H, W, classes] for `image` [batch, D, H, W, inChannels]. */
  predictProbabilities(
    image: Float32Array,
    shape: readonly [number, number, number],
    batch = 1,
  ): Float32Array {
    const dims = validateVolumeShape(shape, batch, 'predict');
    const { inChannels } = this.layout.architecture;
    const expected = batch * dims[0] * dims[1] * dims[2] * inChannels;
    if (!(image instanceof Float32Array) || image.length !== expected)
      throw new RangeError(
        `predict: image must be a Float32Array of ${expected} values, got ${image.length}`,
      );
    const tf = this.tf;
    const probabilities = tf.tidy(() => {
      const x = this.input(image, batch, dims);
      return forwardUNet(tf, this.layout, this.params(), x, { kind: 'eval', running: this.runningMoments() })
        .probabilities;
    });
    try {
      return Float32Array.from(probabilities.dataSync() as Float32Array);
    } finally {
      probabilities.dispose();
    }
  }

  /** SHA-256 (hex) over the weights then the BN running statistics, float32 little-endian, in layout order. */
  weightHash(): string {
    return createHash('sha256')
      .update(new Uint8Array(this.weights.buffer, this.weights.byteOffset, this.weights.byteLength))
      .update(new Uint8Array(this.running.buffer, this.running.byteOffset, this.running.byteLength))
      .digest('hex');
  }

  /** A deep copy of everything that defines the model and its optimiser. */
  state(): UNetState {
    const adam = this.optimizer.state();
    return {
      config: this.config,
      weights: this.getWeights(),
      runningStats: this.getRunningStats(),
      bnBatchesTracked: this.batchesTracked,
      adamStep: adam.step,
      adamM: adam.m,
      adamV: adam.v,
    };
  }

  /** Frees the cached parameter tensors (the model stays usable; they are rebuilt on demand). */
  dispose(): void {
    this.invalidate();
  }
}
