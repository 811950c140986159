// The seed's UNet3D (shared/research/seed.md §1) as data: blocks in forward order, each a list of ops, with their
// widths and skip connections. The parameter layout (architecture.ts), the training graph (network.ts), the
// inference export (export-tfjs.ts), the FLOP count and the summary table all walk this one description, so a
// change of topology is made here and nowhere else.

/** Shape of the network; defaults are the seed's (`--n-channels 1 --n-class 3 --dropout-rate 0.25`, width 32). */
export interface UNetArchitecture {
  /** Channels of the input block (w); the encoder goes w → 2w → 4w. */
  readonly width: number;
  readonly inChannels: number;
  readonly classes: number;
  /** Dropout3d rate inside every ConvBlock stage. */
  readonly dropout: number;
}

/** The seed hard-codes this Dropout3d rate before each stride-2 conv and each upsampling. */
export const RESAMPLE_DROPOUT = 0.001;

/** One op of a block. Widths are multiples of the architecture's width; every op keeps the order of the seed. */
export type BlockOp =
  /** Two stages of Dropout3d(p) → conv 3³ 'same' + bias → BatchNorm → ReLU, to `widths`·width channels. */
  | { readonly op: 'convBlock'; readonly widths: number }
  /** Dropout3d(RESAMPLE_DROPOUT) → conv 2³ stride 2 (channels kept): one level down. */
  | { readonly op: 'downsample' }
  /** Dropout3d(RESAMPLE_DROPOUT) → nearest ×2 → concat [upsampled, output of block `skip`]: one level up. */
  | { readonly op: 'upsample'; readonly skip: string }
  /** Conv 1³ + bias to one channel per class: the network's logits, softmax over channels. */
  | { readonly op: 'classifier' };

export const UNET_BLOCKS = [
  { name: 'inc', ops: [{ op: 'convBlock', widths: 1 }] },
  { name: 'down1', ops: [{ op: 'downsample' }, { op: 'convBlock', widths: 2 }] },
  { name: 'down2', ops: [{ op: 'downsample' }, { op: 'convBlock', widths: 4 }] },
  { name: 'mid', ops: [{ op: 'convBlock', widths: 4 }] },
  {
    name: 'up1',
    ops: [
      { op: 'upsample', skip: 'down1' },
      { op: 'convBlock', widths: 2 },
    ],
  },
  {
    name: 'up2',
    ops: [
      { op: 'upsample', skip: 'inc' },
      { op: 'convBlock', widths: 1 },
    ],
  },
  { name: 'outc', ops: [{ op: 'classifier' }] },
] as const satisfies readonly { readonly name: string; readonly ops: readonly BlockOp[] }[];

export type BlockName = (typeof UNET_BLOCKS)[number]['name'];
export const BLOCK_NAMES: readonly BlockName[] = Object.freeze(UNET_BLOCKS.map((b) => b.name));

/** One Dropout3d layer. */
export interface DropoutLayer {
  readonly kind: 'dropout';
  readonly block: BlockName;
  /** `block.layer`, e.g. `down1.drop`, `mid.drop2`. */
  readonly name: string;
  /** Position among the network's dropout layers: keys its mask stream. */
  readonly index: number;
  readonly rate: number;
  /** Channels of the (concatenated) tensor it masks. */
  readonly channels: number;
}

/** A conv with bias, optionally followed by BatchNorm. */
export interface ConvLayer {
  readonly kind: 'conv';
  readonly block: BlockName;
  /** `down`, `conv1`, `conv2` or `conv`; parameters are named `block.layer.weight|bias`. */
  readonly layer: string;
  readonly kernel: number;
  readonly stride: number;
  readonly padding: 'same' | 'valid';
  /** Input channels per concatenated tensor ([upsampled, skip] right after a concat, else one entry). */
  readonly inputs: readonly number[];
  readonly out: number;
  /** The BatchNorm after the conv (`bn1` → parameters `block.bn1.gamma|beta`) and its position among them. */
  readonly batchNorm: { readonly layer: string; readonly index: number } | null;
  /** ReLU follows each BatchNorm; `softmax` marks the network's output, whose conv result are the logits. */
  readonly activation: 'relu' | 'linear' | 'softmax';
  /** Resolution level of the output: 0 is the input's, each level halves every spatial dim. */
  readonly level: number;
}

/** Nearest-neighbour ×2 of every spatial dim. */
export interface UpsampleLayer {
  readonly kind: 'upsample';
  readonly block: BlockName;
  readonly channels: number;
}

/** Channel concatenation [the tensor so far, output of block `skip`]. */
export interface ConcatLayer {
  readonly kind: 'concat';
  readonly block: BlockName;
  readonly skip: BlockName;
  readonly channels: readonly number[];
}

export type UNetLayer = DropoutLayer | ConvLayer | UpsampleLayer | ConcatLayer;

/** An op with its channel counts resolved for one architecture, and the layers it expands to. */
export interface TopologyOp {
  readonly op: BlockOp['op'];
  /** Channels entering the op, per concatenated tensor. */
  readonly inputs: readonly number[];
  /** Channels leaving it, per concatenated tensor (two after an upsample's concat). */
  readonly outputs: readonly number[];
  readonly layers: readonly UNetLayer[];
}

export interface TopologyBlock {
  readonly name: BlockName;
  /** Resolution level of the block's output. */
  readonly level: number;
  readonly ops: readonly TopologyOp[];
  /** The ops' layers in forward order. */
  readonly layers: readonly UNetLayer[];
}

export interface UNetTopology {
  readonly blocks: readonly TopologyBlock[];
  /** Every layer in forward order: parameters, dropout masks and BN statistics are numbered in this order. */
  readonly layers: readonly UNetLayer[];
  /** Deepest level: every spatial dim of an input must be a multiple of 2^depth. */
  readonly depth: number;
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** Expands UNET_BLOCKS for one architecture, checking that levels and skips fit together. */
class TopologyResolver {
  private dropouts = 0;
  private batchNorms = 0;
  private level = 0;
  private depth = 0;
  /** Channels of the tensor so far, per concatenated part. */
  private channels: readonly number[];
  private readonly outputs = new Map<BlockName, { channels: number; level: number }>();

  constructor(private readonly arch: UNetArchitecture) {
    this.channels = [arch.inChannels];
  }

  resolve(): UNetTopology {
    const blocks = UNET_BLOCKS.map((block): TopologyBlock => {
      const ops = block.ops.map((op: BlockOp) => this.op(block.name, op));
      const [channels, more] = this.channels;
      if (channels === undefined || more !== undefined)
        throw new Error(`UNet topology: block ${block.name} ends on a concatenation`);
      this.outputs.set(block.name, { channels, level: this.level });
      return { name: block.name, level: this.level, ops, layers: ops.flatMap((o) => o.layers) };
    });
    const last = blocks.at(-1)?.layers.at(-1);
    if (last?.kind !== 'conv' || last.activation !== 'softmax' || last.level !== 0)
      throw new Error('UNet topology: the last op must be the classifier, at the input resolution');
    return { blocks, layers: blocks.flatMap((b) => b.layers), depth: this.depth };
  }

  private op(block: BlockName, op: BlockOp): TopologyOp {
    const inputs = this.channels;
    const layers: UNetLayer[] = [];
    switch (op.op) {
      case 'convBlock': {
        const out = op.widths * this.arch.width;
        for (const stage of [1, 2]) {
          layers.push(this.dropout(block, `drop${stage}`, this.arch.dropout, sum(this.channels)));
          layers.push(this.conv(block, `conv${stage}`, 3, `bn${stage}`, out, 'relu'));
        }
        break;
      }
      case 'downsample': {
        const c = this.single(block, op.op);
        layers.push(this.dropout(block, 'drop', RESAMPLE_DROPOUT, c));
        this.level++;
        this.depth = Math.max(this.depth, this.level);
        layers.push(this.conv(block, 'down', 2, null, c, 'linear'));
        break;
      }
      case 'upsample': {
        const c = this.single(block, op.op);
        layers.push(this.dropout(block, 'drop', RESAMPLE_DROPOUT, c));
        this.level--;
        const skip = this.outputs.get(op.skip as BlockName);
        if (!skip || skip.level !== this.level)
          throw new Error(
            `UNet topology: ${block} skips from '${op.skip}', which is not an earlier block at level ${this.level}`,
          );
        layers.push({ kind: 'upsample', block, channels: c });
        this.channels = [c, skip.channels];
        layers.push({ kind: 'concat', block, skip: op.skip as BlockName, channels: this.channels });
        break;
      }
      case 'classifier': {
        this.single(block, op.op);
        layers.push(this.conv(block, 'conv', 1, null, this.arch.classes, 'softmax'));
        break;
      }
    }
    return { op: op.op, inputs, outputs: this.channels, layers };
  }

  private single(block: BlockName, op: string): number {
    const [c, more] = this.channels;
    if (c === undefined || more !== undefined)
      throw new Error(`UNet topology: ${block}.${op} needs one tensor, not a concatenation`);
    return c;
  }

  private dropout(block: BlockName, layer: string, rate: number, channels: number): DropoutLayer {
    return { kind: 'dropout', block, name: `${block}.${layer}`, index: this.dropouts++, rate, channels };
  }

  private conv(
    block: BlockName,
    layer: string,
    kernel: number,
    batchNorm: string | null,
    out: number,
    activation: ConvLayer['activation'],
  ): ConvLayer {
    const conv: ConvLayer = {
      kind: 'conv',
      block,
      layer,
      kernel,
      // A 2³ kernel is a downsampling (stride 2, no padding); 3³ keeps the size ('same'); 1³ is pointwise.
      stride: kernel === 2 ? 2 : 1,
      padding: kernel === 3 ? 'same' : 'valid',
      inputs: this.channels,
      out,
      batchNorm: batchNorm ? { layer: batchNorm, index: this.batchNorms++ } : null,
      activation,
      level: this.level,
    };
    this.channels = [out];
    return conv;
  }
}

const topologyCache = new Map<string, UNetTopology>();

/**
 * UNET_BLOCKS resolved for `architecture` (memoised: it is immutable). Callers pass an architecture that
 * validateArchitecture accepted (unetLayout does).
 */
export function unetTopology(architecture: UNetArchitecture): UNetTopology {
  const { width, inChannels, classes, dropout } = architecture;
  const key = `${width}/${inChannels}/${classes}/${dropout}`;
  const cached = topologyCache.get(key);
  if (cached) return cached;
  const topology = new TopologyResolver(architecture).resolve();
  topologyCache.set(key, topology);
  return topology;
}
