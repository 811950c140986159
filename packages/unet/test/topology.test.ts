import { beforeAll, describe, expect, it } from 'vitest';
import {
  formatSummary,
  loadEngine,
  SEED_ARCHITECTURE,
  toLayersModel,
  UNET_BLOCKS,
  UNet3D,
  unetLayout,
  unetTopology,
  type ConvLayer,
  type Tfjs,
} from '../src/index.js';

let tf: Tfjs;
beforeAll(async () => {
  tf = (await loadEngine({ engine: 'cpu' })).tf;
});

describe('the topology description every graph walks', () => {
  it('resolves the seed: levels from its down/up ops, skips at their level, the classifier last', () => {
    const topology = unetTopology(SEED_ARCHITECTURE);
    expect(topology.blocks.map((b) => [b.name, b.level])).toEqual([
      ['inc', 0],
      ['down1', 1],
      ['down2', 2],
      ['mid', 2],
      ['up1', 1],
      ['up2', 0],
      ['outc', 0],
    ]);
    expect(topology.depth).toBe(2);
    expect(topology.blocks.map((b) => b.name)).toEqual(UNET_BLOCKS.map((b) => b.name));
    const concats = topology.layers.flatMap((l) =>
      l.kind === 'concat' ? [[l.block, l.skip, l.channels]] : [],
    );
    expect(concats).toEqual([
      ['up1', 'down1', [128, 64]],
      ['up2', 'inc', [64, 32]],
    ]);
    const last = topology.layers.at(-1) as ConvLayer;
    expect([last.block, last.kernel, last.out, last.activation]).toEqual(['outc', 1, 3, 'softmax']);
  });

  it('is what the parameter layout lists: conv and BN parameters and dropout layers in its order', () => {
    const arch = { ...SEED_ARCHITECTURE, width: 4 };
    const topology = unetTopology(arch);
    const layout = unetLayout(arch);
    const convs = topology.layers.filter((l): l is ConvLayer => l.kind === 'conv');
    const expected = convs.flatMap((c) => {
      const cin = c.inputs.reduce((a, b) => a + b, 0);
      const own = [
        [`${c.block}.${c.layer}.weight`, [c.kernel, c.kernel, c.kernel, cin, c.out]],
        [`${c.block}.${c.layer}.bias`, [c.out]],
      ];
      const bn = c.batchNorm ? `${c.block}.${c.batchNorm.layer}` : null;
      return bn ? [...own, [`${bn}.gamma`, [c.out]], [`${bn}.beta`, [c.out]]] : own;
    });
    expect(layout.parameters.map((p) => [p.name, p.shape])).toEqual(expected);
    const dropouts = topology.layers.flatMap((l) =>
      l.kind === 'dropout' ? [[l.index, l.name, l.rate]] : [],
    );
    expect(layout.dropouts.map((d) => [d.index, d.name, d.rate])).toEqual(dropouts);
    expect(layout.batchNorms.map((b) => b.name)).toEqual(
      convs.flatMap((c) => (c.batchNorm ? [`${c.block}.${c.batchNorm.layer}`] : [])),
    );
  });

  it('is what the export builds: one Layers layer per conv, upsampling and concatenation, in its order', () => {
    const arch = { ...SEED_ARCHITECTURE, width: 2 };
    const model = UNet3D.create(tf, { seed: 0, architecture: arch });
    const layersModel = toLayersModel(tf, model);
    try {
      const names = layersModel.layers.map((l) => l.name).filter((n) => n !== 'image');
      const expected = unetTopology(arch).layers.flatMap((l) =>
        l.kind === 'conv'
          ? [`${l.block}_${l.layer}`]
          : l.kind === 'upsample'
            ? [`${l.block}_upsample`]
            : l.kind === 'concat'
              ? [`${l.block}_concat`]
              : [],
      );
      expect(names).toEqual(expected);
    } finally {
      layersModel.dispose();
      model.dispose();
    }
  });

  it('words the summary table from the same ops', () => {
    const table = formatSummary(SEED_ARCHITECTURE);
    expect(table).toMatch(/up1 +Drop\(0\.001\), Upsample×2, cat\[128, 64\], ConvBlock\(192→64\) +442,752/);
    expect(table).toMatch(/down2 +Drop\(0\.001\), Conv k2 s2 \(64→64\), ConvBlock\(64→128\) +697,152/);
    expect(table).toMatch(/outc +Conv 1×1×1 \(32→3\), softmax +99/);
  });
});
