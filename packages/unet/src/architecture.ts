// The seed's UNet3D (shared/research/seed.md §1) as a flat, ordered list of parameters.
// Everything that needs parameter offsets (gradients, Adam, checkpoints, hashes) uses this one layout.

/** Shape of the network; defaults are the seed's (`--n-channels 1 --n-class 3 --dropout-rate 0.25`, width 32). */
export interface UNetArchitecture {
  /** Channels of the input block (w); the encoder goes w → 2w → 4w. */
  readonly width: number;
  readonly inChannels: number;
  readonly classes: number;
  /** Dropout3d rate inside every ConvBlock stage. */
  readonly dropout: number;
}

export const SEED_ARCHITECTURE: UNetArchitecture = Object.freeze({
  width: 32,
  inChannels: 1,
  classes: 3,
  dropout: 0.25,
});

/** The seed hard-codes this Dropout3d rate before each stride-2 conv and each upsampling. */
export const RESAMPLE_DROPOUT = 0.001;
export const BN_EPSILON = 1e-5;
/** PyTorch sense: running = (1 − momentum)·running + momentum·batch. */
export const BN_MOMENTUM = 0.1;

export const BLOCK_NAMES = ['inc', 'down1', 'down2', 'mid', 'up1', 'up2', 'outc'] as const;
export type BlockName = (typeof BLOCK_NAMES)[number];
export type ParameterRole = 'weight' | 'bias' | 'gamma' | 'beta';

export interface ParameterSpec {
  /** e.g. `down1.conv2.weight`. */
  readonly name: string;
  readonly block: BlockName;
  /** e.g. `conv2`, `bn2`, `down`, `conv`. */
  readonly layer: string;
  readonly role: ParameterRole;
  /** tfjs layout: conv kernels are [kd, kh, kw, in, out]. */
  readonly shape: readonly number[];
  readonly size: number;
  /** Index of the first value in the flat parameter / gradient vector. */
  readonly offset: number;
  /** in·k³ of the conv this belongs to (0 for BN); PyTorch's init bound is 1/√fanIn. */
  readonly fanIn: number;
  /** Conv kernels after a concatenation: input channels per concatenated tensor ([upsampled, skip]). */
  readonly inputGroups?: readonly number[];
}

export interface BatchNormSpec {
  /** e.g. `mid.bn1`. */
  readonly name: string;
  readonly channels: number;
  /** The layer's mean starts here in the flat BN-statistics vector; its variance follows at offset + channels. */
  readonly offset: number;
}

/** One Dropout3d layer; its index keys the mask stream. */
export interface DropoutSpec {
  readonly index: number;
  readonly name: string;
  readonly rate: number;
  readonly channels: number;
}

export interface UNetLayout {
  readonly architecture: UNetArchitecture;
  readonly parameters: readonly ParameterSpec[];
  readonly batchNorms: readonly BatchNormSpec[];
  readonly dropouts: readonly DropoutSpec[];
  readonly totalParams: number;
  /** Length of bnStats / running statistics: Σ 2·channels over the BN layers. */
  readonly bnStatsLength: number;
  readonly blocks: readonly { readonly name: BlockName; readonly params: number }[];
}

export function validateArchitecture(arch: UNetArchitecture, source = 'architecture'): UNetArchitecture {
  const positive = (field: keyof UNetArchitecture) => {
    const v = arch[field];
    if (!Number.isSafeInteger(v) || v < 1)
      throw new RangeError(`${source}.${field} must be a positive integer, got ${v}`);
  };
  positive('width');
  positive('inChannels');
  positive('classes');
  if (arch.classes < 2) throw new RangeError(`${source}.classes must be at least 2, got ${arch.classes}`);
  if (!(typeof arch.dropout === 'number' && arch.dropout >= 0 && arch.dropout < 1))
    throw new RangeError(`${source}.dropout must be in [0, 1), got ${arch.dropout}`);
  return arch;
}

class LayoutBuilder {
  readonly parameters: ParameterSpec[] = [];
  readonly batchNorms: BatchNormSpec[] = [];
  readonly dropouts: DropoutSpec[] = [];
  private offset = 0;
  private bnOffset = 0;

  constructor(private readonly dropoutRate: number) {}

  private add(
    block: BlockName,
    layer: string,
    role: ParameterRole,
    shape: number[],
    fanIn: number,
    inputGroups?: readonly number[],
  ): void {
    const size = shape.reduce((a, b) => a * b, 1);
    const name = `${block}.${layer}.${role}`;
    const spec: ParameterSpec = { name, block, layer, role, shape, size, offset: this.offset, fanIn };
    this.parameters.push(inputGroups && inputGroups.length > 1 ? { ...spec, inputGroups } : spec);
    this.offset += size;
  }

  conv(
    block: BlockName,
    layer: string,
    k: number,
    cin: number,
    cout: number,
    inputGroups?: readonly number[],
  ): void {
    const fanIn = cin * k * k * k;
    this.add(block, layer, 'weight', [k, k, k, cin, cout], fanIn, inputGroups);
    this.add(block, layer, 'bias', [cout], fanIn);
  }

  dropout(block: BlockName, layer: string, rate: number, channels: number): void {
    this.dropouts.push({ index: this.dropouts.length, name: `${block}.${layer}`, rate, channels });
  }

  /** ConvBlock: two stages of Dropout3d(p) → conv 3³ → BatchNorm → ReLU; `cin` may list concatenated inputs. */
  convBlock(block: BlockName, cin: number | readonly number[], cout: number): void {
    const groups = typeof cin === 'number' ? [cin] : cin;
    const total = groups.reduce((a, b) => a + b, 0);
    for (const stage of [1, 2]) {
      const inputs = stage === 1 ? total : cout;
      this.dropout(block, `drop${stage}`, this.dropoutRate, inputs);
      this.conv(block, `conv${stage}`, 3, inputs, cout, stage === 1 ? groups : undefined);
      this.add(block, `bn${stage}`, 'gamma', [cout], 0);
      this.add(block, `bn${stage}`, 'beta', [cout], 0);
      this.batchNorms.push({ name: `${block}.bn${stage}`, channels: cout, offset: this.bnOffset });
      this.bnOffset += 2 * cout;
    }
  }

  get total(): number {
    return this.offset;
  }

  get bnTotal(): number {
    return this.bnOffset;
  }
}

const layoutCache = new Map<string, UNetLayout>();

/** The ordered parameter layout of a UNet3D (memoised: it is immutable). */
export function unetLayout(architecture: UNetArchitecture = SEED_ARCHITECTURE): UNetLayout {
  const arch = validateArchitecture(architecture);
  const cacheKey = `${arch.width}/${arch.inChannels}/${arch.classes}/${arch.dropout}`;
  const cached = layoutCache.get(cacheKey);
  if (cached) return cached;

  const w = arch.width;
  const b = new LayoutBuilder(arch.dropout);
  b.convBlock('inc', arch.inChannels, w);
  b.dropout('down1', 'drop', RESAMPLE_DROPOUT, w);
  b.conv('down1', 'down', 2, w, w);
  b.convBlock('down1', w, 2 * w);
  b.dropout('down2', 'drop', RESAMPLE_DROPOUT, 2 * w);
  b.conv('down2', 'down', 2, 2 * w, 2 * w);
  b.convBlock('down2', 2 * w, 4 * w);
  b.convBlock('mid', 4 * w, 4 * w);
  // Up blocks: dropout on the decoder tensor, ×2, concat [upsampled, skip], ConvBlock.
  b.dropout('up1', 'drop', RESAMPLE_DROPOUT, 4 * w);
  b.convBlock('up1', [4 * w, 2 * w], 2 * w);
  b.dropout('up2', 'drop', RESAMPLE_DROPOUT, 2 * w);
  b.convBlock('up2', [2 * w, w], w);
  b.conv('outc', 'conv', 1, w, arch.classes);

  const blocks = BLOCK_NAMES.map((name) => ({
    name,
    params: b.parameters.filter((p) => p.block === name).reduce((s, p) => s + p.size, 0),
  }));
  const layout: UNetLayout = Object.freeze({
    architecture: Object.freeze({ ...arch }),
    parameters: Object.freeze(b.parameters),
    batchNorms: Object.freeze(b.batchNorms),
    dropouts: Object.freeze(b.dropouts),
    totalParams: b.total,
    bnStatsLength: b.bnTotal,
    blocks: Object.freeze(blocks),
  });
  layoutCache.set(cacheKey, layout);
  return layout;
}

/** Looks a parameter up by name (throws naming the parameter when unknown). */
export function parameterByName(layout: UNetLayout, name: string): ParameterSpec {
  const spec = layout.parameters.find((p) => p.name === name);
  if (!spec) throw new Error(`unknown UNet parameter '${name}'`);
  return spec;
}
