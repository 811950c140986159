// UNet3D forward pass from raw tfjs ops, channels-last (NDHWC). Mirrors seed.md §1 layer by layer.
import type * as tfjs from '@tensorflow/tfjs';
import { BN_EPSILON, type BlockName, type UNetLayout } from './architecture.js';
import { addBias, batchNormEval, batchNormTrain, channelMask, upsampleNearest } from './channel-ops.js';
import type { Tfjs } from './engine.js';
import { tensorSlots } from './parameter-tensors.js';

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
  private dropoutIndex = 0;
  private bnIndex = 0;
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
  private dropout(groups: readonly Tensor5D[], name: string): Tensor5D[] {
    const spec = this.layout.dropouts[this.dropoutIndex];
    if (!spec || spec.name !== name) throw new Error(`dropout layer order broken at ${name}`);
    this.dropoutIndex++;
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
  private conv(
    groups: readonly Tensor5D[],
    block: BlockName,
    layer: string,
    stride: number,
    pad: 'same' | 'valid',
  ): Tensor5D {
    const tf = this.tf;
    const name = `${block}.${layer}.weight`;
    const kernels =
      groups.length === 1 ? [this.param(name)] : groups.map((_, g) => this.param(`${name}#${g}`));
    const parts = groups.map((x, i) => tf.conv3d(x, kernels[i] as tfjs.Tensor5D, stride, pad, 'NDHWC'));
    const y = parts.reduce((sum, part) => tf.add(sum, part) as Tensor5D);
    return addBias(tf, y, this.param(`${block}.${layer}.bias`) as Tensor1D);
  }

  private batchNorm(x: Tensor5D, block: BlockName, layer: string): Tensor5D {
    const tf = this.tf;
    const gamma = this.param(`${block}.${layer}.gamma`) as Tensor1D;
    const beta = this.param(`${block}.${layer}.beta`) as Tensor1D;
    const index = this.bnIndex++;
    if (this.mode.kind === 'eval') {
      const running = this.mode.running[index];
      if (!running) throw new Error(`missing running statistics for BN layer ${index}`);
      return batchNormEval(tf, x, running, gamma, beta, BN_EPSILON);
    }
    const { y, mean, variance, count } = batchNormTrain(tf, x, gamma, beta, BN_EPSILON);
    this.moments.push({ mean, variance, count });
    return y;
  }

  /** Two stages of Dropout3d(p) → conv 3³ 'same' + bias → BatchNorm → ReLU; `groups` are concatenated channels. */
  convBlock(groups: readonly Tensor5D[], block: BlockName): Tensor5D {
    let y = [...groups];
    for (const stage of [1, 2]) {
      const z = this.conv(this.dropout(y, `${block}.drop${stage}`), block, `conv${stage}`, 1, 'same');
      y = [this.tf.relu(this.batchNorm(z, block, `bn${stage}`))];
    }
    return y[0] as Tensor5D;
  }

  /** Dropout3d(0.001) → conv 2³ stride 2 (channels kept) → ConvBlock. */
  down(x: Tensor5D, block: BlockName): Tensor5D {
    const y = this.conv(this.dropout([x], `${block}.drop`), block, 'down', 2, 'valid');
    return this.convBlock([y], block);
  }

  /** Dropout3d(0.001) → nearest ×2 → concat [upsampled, skip] (in that order) → ConvBlock. */
  up(x: Tensor5D, skip: Tensor5D, block: BlockName): Tensor5D {
    const [dropped] = this.dropout([x], `${block}.drop`);
    return this.convBlock([upsampleNearest(this.tf, dropped as Tensor5D), skip], block);
  }

  run(input: Tensor5D): ForwardResult {
    const x1 = this.convBlock([input], 'inc');
    const x2 = this.down(x1, 'down1');
    const x3 = this.convBlock([this.down(x2, 'down2')], 'mid');
    const u1 = this.up(x3, x2, 'up1');
    const u2 = this.up(u1, x1, 'up2');
    const logits = this.conv([u2], 'outc', 'conv', 1, 'valid');
    return { logits, probabilities: this.tf.softmax(logits), moments: this.moments };
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
