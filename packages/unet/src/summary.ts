// The per-block parameter table of `lits-unet summary`.
import { unetLayout, type UNetArchitecture } from './architecture.js';

export interface ModelSummary {
  readonly totalParams: number;
  readonly blocks: readonly { readonly name: string; readonly params: number }[];
}

export function modelSummary(architecture: UNetArchitecture): ModelSummary {
  const layout = unetLayout(architecture);
  return {
    totalParams: layout.totalParams,
    blocks: layout.blocks.map((b) => ({ name: b.name, params: b.params })),
  };
}

const BLOCK_DESCRIPTIONS: Record<string, (w: number, a: UNetArchitecture) => string> = {
  inc: (w, a) => `ConvBlock(${a.inChannels}→${w})`,
  down1: (w) => `Drop(0.001), Conv k2 s2 (${w}→${w}), ConvBlock(${w}→${2 * w})`,
  down2: (w) => `Drop(0.001), Conv k2 s2 (${2 * w}→${2 * w}), ConvBlock(${2 * w}→${4 * w})`,
  mid: (w) => `ConvBlock(${4 * w}→${4 * w})`,
  up1: (w) => `Drop(0.001), Upsample×2, cat[${4 * w}, ${2 * w}], ConvBlock(${6 * w}→${2 * w})`,
  up2: (w) => `Drop(0.001), Upsample×2, cat[${2 * w}, ${w}], ConvBlock(${3 * w}→${w})`,
  outc: (w, a) => `Conv 1×1×1 (${w}→${a.classes}), softmax`,
};

/** A fixed-width text table: block, layers, params, plus the total. */
export function formatSummary(architecture: UNetArchitecture): string {
  const summary = modelSummary(architecture);
  const fmt = (n: number) => n.toLocaleString('en-US');
  const rows = summary.blocks.map((b) => [
    b.name,
    BLOCK_DESCRIPTIONS[b.name]?.(architecture.width, architecture) ?? '',
    fmt(b.params),
  ]);
  rows.push([
    'total',
    `UNet3D width ${architecture.width}, dropout ${architecture.dropout}`,
    fmt(summary.totalParams),
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] as string).length), 6));
  const line = (r: string[]) =>
    `${(r[0] as string).padEnd(widths[0] as number)}  ${(r[1] as string).padEnd(widths[1] as number)}  ${(r[2] as string).padStart(widths[2] as number)}`;
  const header = line(['block', 'layers', 'params']);
  const rule = '-'.repeat(header.length);
  return [header, rule, ...rows.slice(0, -1).map(line), rule, line(rows.at(-1) as string[])].join('\n');
}
