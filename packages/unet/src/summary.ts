// The per-block parameter table of `lits-unet summary`.
import { unetLayout, type UNetArchitecture } from './architecture.js';
import { RESAMPLE_DROPOUT, unetTopology, type TopologyOp } from './topology.js';

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

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** One op of the topology in the table's words, e.g. `Drop(0.001), Upsample×2, cat[128, 64]`. */
function describeOp({ op, inputs, outputs }: TopologyOp): string {
  switch (op) {
    case 'convBlock':
      return `ConvBlock(${sum(inputs)}→${sum(outputs)})`;
    case 'downsample':
      return `Drop(${RESAMPLE_DROPOUT}), Conv k2 s2 (${sum(inputs)}→${sum(outputs)})`;
    case 'upsample':
      return `Drop(${RESAMPLE_DROPOUT}), Upsample×2, cat[${outputs.join(', ')}]`;
    case 'classifier':
      return `Conv 1×1×1 (${sum(inputs)}→${sum(outputs)}), softmax`;
  }
}

/** A fixed-width text table: block, layers, params, plus the total. */
export function formatSummary(architecture: UNetArchitecture): string {
  const summary = modelSummary(architecture);
  const layers = new Map(
    unetTopology(unetLayout(architecture).architecture).blocks.map((b) => [
      b.name as string,
      b.ops.map(describeOp).join(', '),
    ]),
  );
  const fmt = (n: number) => n.toLocaleString('en-US');
  const rows = summary.blocks.map((b) => [b.name, layers.get(b.name) ?? '', fmt(b.params)]);
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
