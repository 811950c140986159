// UNet3D forward pass from raw tfjs ops, channels-last (NDHWC): a walk of the topology (topology.ts) layer by layer.
import type * as tfjs from '@tensorflow/tfjs';
import { BN_EPSILON, type UNetLayout } from './architecture.js';
import { addBias, batchNormEval, batchNormTrain, channelMask, upsampleNearest } from './channel-ops.js';
import type { Tfjs } from './engine.js';
import { tensorSlots } from './parameter-tensors.js';
import { unetTopology, type BlockName, type ConvLayer, type DropoutLayer } from './topology.js';

type Tensor = tfjs.Tensor;
type Tensor1D = tfjs.Tensor1D;
type Tensor5D = tfjs.Tensor5D;

export interface BatchMoments {
  readonly mean: Tensor1D;
  /** Biased (÷n) variance: what training-mode BatchNorm normalises with. */
  readonly variance: Tensor1D;
}

/** Training-mode moments plus the number of values per channel they were taken over. */
export interface TrainMoments extends BatchMoments {
  readonly count: number;
}

export type ForwardMode =
  /** Batch statistics and dropout; `masks[i]` is the [batch·channels] multiplier of dropout layer i (null: off). */
  | { readonly kind: 'train'; readonly masks: readonly (Float32Array | null)[] }
  /** Running statistics, no dropout. */
  | { readonly kind: 'eval'; readonly running: readonly BatchMoments[] };

export interface ForwardResult {
  readonly logits: Tensor5D;
  /** Softmax over channels, as the seed's LitsSegmentator.forward returns. */
  readonly probabilities: Tensor5D;
  /** Per BN layer in layout order (train mode only). */
  readonly moments: TrainMoments[];
}

class UNetGraph {
  private readonly byName = new Map<string, Tensor>();
  readonly moments: TrainMoments[] = [];

  constructor(
    private readonly tf: Tfjs,
    private readonly layout: UNetLayout,
    params: readonly Tensor[],
    private readonly mode: ForwardMode,
  ) {
    const slots = tensorSlots(layout);
    if (params.length !== slots.length)
      throw new Error(`forward needs ${slots.length} parameter tensors, got ${params.length}`);
    slots.forEach((slot, i) => this.byName.set(slot.name, params[i] as Tensor));
  }

  private param(name: string): Tensor {
    const t = this.byName.get(name);
    if (!t) throw new Error(`missing UNet parameter '${name}'`);
    return t;
  }

  /** Channel-wise Dropout3d over channel groups that stand for their concatenation (mask index n·ΣC + c). */
  private dropout(groups: readonly Tensor5D[], layer: DropoutLayer): Tensor5D[] {
    const spec = this.layout.dropouts[layer.index];
    if (!spec || spec.name !== layer.name) throw new Error(`dropout layer order broken at ${layer.name}`);
    if (this.mode.kind !== 'train') return [...groups];
    const mask = this.mode.masks[spec.index];
    if (!mask) return [...groups];
    const n = (groups[0] as Tensor5D).shape[0];
    let first = 0;
    return groups.map((x) => {
      const c = x.shape[4];
      const part = new Float32Array(n * c);
      for (let s = 0; s < n; s++)
        part.set(mask.subarray(s * spec.channels + first, s * spec.channels + first + c), s * c);
      first += c;
      return this.tf.mul(x, channelMask(this.tf, part, x.shape));
    });
  }

  /**
   * Conv + bias over channel groups: conv(concat(groups), W) computed as Σ_g conv(group_g, W_g), W_g being the
   * kernel's input-channel slice g (its own tensor, see parameter-tensors.ts), so no concat/split is needed.
   */
  private conv(groups: readonly Tensor5D[], { block, layer, stride, padding }: ConvLayer): Tensor5D {
    const tf = this.tf;
    const name = `${block}.${layer}.weight`;
    const kernels =
      groups.length === 1 ? [this.param(name)] : groups.map((_, g) => this.param(`${name}#${g}`));
    const parts = groups.map((x, i) => tf.conv3d(x, kernels[i] as tfjs.Tensor5D, stride, padding, 'NDHWC'));
    const y = parts.reduce((sum, part) => tf.add(sum, part) as Tensor5D);
    return addBias(tf, y, this.param(`${block}.${layer}.bias`) as Tensor1D);
  }

  private batchNorm(x: Tensor5D, block: BlockName, batchNorm: NonNullable<ConvLayer['batchNorm']>): Tensor5D {
    const tf = this.tf;
    const gamma = this.param(`${block}.${batchNorm.layer}.gamma`) as Tensor1D;
    const beta = this.param(`${block}.${batchNorm.layer}.beta`) as Tensor1D;
    if (this.mode.kind === 'eval') {
      const running = this.mode.running[batchNorm.index];
      if (!running) throw new Error(`missing running statistics for BN layer ${batchNorm.index}`);
      return batchNormEval(tf, x, running, gamma, beta, BN_EPSILON);
    }
    const { y, mean, variance, count } = batchNormTrain(tf, x, gamma, beta, BN_EPSILON);
    this.moments.push({ mean, variance, count });
    return y;
  }

  /**
   * The topology's layers in order on `groups`, the channel-wise parts of the tensor so far: a concat only appends
   * the skip's tensor, and the conv after it sums per-part convs (see conv).
   */
  run(input: Tensor5D): ForwardResult {
    const tf = this.tf;
    const outputs = new Map<BlockName, Tensor5D>();
    let groups: Tensor5D[] = [input];
    let logits: Tensor5D | null = null;
    for (const block of unetTopology(this.layout.architecture).blocks) {
      for (const layer of block.layers) {
        if (layer.kind === 'dropout') groups = this.dropout(groups, layer);
        else if (layer.kind === 'upsample') groups = [upsampleNearest(tf, this.single(groups, block.name))];
        else if (layer.kind === 'concat') groups = [...groups, outputs.get(layer.skip) as Tensor5D];
        else {
          let y = this.conv(groups, layer);
          if (layer.batchNorm) y = this.batchNorm(y, layer.block, layer.batchNorm);
          if (layer.activation === 'relu') y = tf.relu(y);
          if (layer.activation === 'softmax') logits = y;
          groups = [y];
        }
      }
      outputs.set(block.name, this.single(groups, block.name));
    }
    if (!logits) throw new Error('UNet topology has no softmax output');
    return { logits, probabilities: tf.softmax(logits), moments: this.moments };
  }

  private single(groups: readonly Tensor5D[], block: BlockName): Tensor5D {
    if (groups.length !== 1)
      throw new Error(`UNet block ${block}: expected one tensor, got ${groups.length}`);
    return groups[0] as Tensor5D;
  }
}

/** Runs the network on `input` [N, D, H, W, inChannels]; `params` in tensorSlots order. Call inside tf.tidy/grads. */
export function forwardUNet(
  tf: Tfjs,
  layout: UNetLayout,
  params: readonly Tensor[],
  input: Tensor5D,
  mode: ForwardMode,
): ForwardResult {
  return new UNetGraph(tf, layout, params, mode).run(input);
}
