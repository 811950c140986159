// The seed's UNet3D (shared/research/seed.md §1) as a flat, ordered list of parameters, read off its topology
// (topology.ts). Everything that needs parameter offsets (gradients, Adam, checkpoints, hashes) uses this layout.
import {
  BLOCK_NAMES,
  unetTopology,
  type BlockName,
  type ConvLayer,
  type DropoutLayer,
  type UNetArchitecture,
} from './topology.js';

export type { UNetArchitecture } from './topology.js';

export const SEED_ARCHITECTURE: UNetArchitecture = Object.freeze({
  width: 32,
  inChannels: 1,
  classes: 3,
  dropout: 0.25,
});

export const BN_EPSILON = 1e-5;
/** PyTorch sense: running = (1 − momentum)·running + momentum·batch. */
export const BN_MOMENTUM = 0.1;

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

  /** Weight and bias, then the BatchNorm's gamma and beta when one follows. */
  conv({ block, layer, kernel: k, inputs, out, batchNorm }: ConvLayer): void {
    const cin = inputs.reduce((a, b) => a + b, 0);
    const fanIn = cin * k * k * k;
    this.add(block, layer, 'weight', [k, k, k, cin, out], fanIn, inputs);
    this.add(block, layer, 'bias', [out], fanIn);
    if (!batchNorm) return;
    this.add(block, batchNorm.layer, 'gamma', [out], 0);
    this.add(block, batchNorm.layer, 'beta', [out], 0);
    this.batchNorms.push({ name: `${block}.${batchNorm.layer}`, channels: out, offset: this.bnOffset });
    this.bnOffset += 2 * out;
  }

  dropout({ index, name, rate, channels }: DropoutLayer): void {
    this.dropouts.push({ index, name, rate, channels });
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

  const b = new LayoutBuilder();
  for (const layer of unetTopology(arch).layers) {
    if (layer.kind === 'conv') b.conv(layer);
    else if (layer.kind === 'dropout') b.dropout(layer);
  }

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
