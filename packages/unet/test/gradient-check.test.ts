// Gradients of the tfjs graph (float32, with the hand-written BN / bias gradients) against central finite
// differences of an independent float64 forward (test/reference/float64-unet.ts), at width 2 on 8³.
import { CounterRng } from '@lits-ddp/counter-rng';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  dropoutMask,
  loadEngine,
  SEED_FOCAL_LOSS,
  UNet3D,
  type MicroBatch,
  type Tfjs,
} from '../src/index.js';
import { bnValuesPerChannel, referenceForward } from './reference/float64-unet.js';

let tf: Tfjs;
beforeAll(async () => {
  tf = (await loadEngine({ engine: 'cpu' })).tf;
});

function tinyBatch(): MicroBatch {
  const shape = [8, 8, 8] as const;
  const voxels = 2 * 8 * 8 * 8;
  const rng = CounterRng.derive(7, 'gradient-check', 'data');
  const image = new Float32Array(voxels);
  const label = new Uint8Array(voxels);
  for (let i = 0; i < voxels; i++) {
    label[i] = rng.int(3);
    image[i] = Math.fround(label[i]! * 0.7 + rng.normal());
  }
  return { image, label, batch: 2, shape };
}

describe('gradient check (width 2, 8³, batch 2, dropout on)', () => {
  it('matches float64 finite differences within 1e-3 relative error', () => {
    const model = UNet3D.create(tf, { seed: 11, architecture: { width: 2 } });
    const layout = model.layout;
    const mb = tinyBatch();
    const key = { seed: 11, epoch: 0, step: 3, microBatch: 1 };
    const result = model.computeGradients(mb, key);

    const masks = layout.dropouts.map((d) => dropoutMask(key, d.index, mb.batch, d.channels, d.rate));
    expect(masks.some((m) => m.includes(0))).toBe(true); // dropout really drops something in this check
    const input = { data: Float64Array.from(mb.image), shape: [2, 8, 8, 8, 1] as const };
    const weights = Float64Array.from(model.getWeights());
    const lossAt = (w: Float64Array) =>
      referenceForward(layout, w, input, mb.label, masks, SEED_FOCAL_LOSS).loss;

    // The forward itself: loss, probabilities and BN statistics agree with float64 to float32 accuracy.
    const ref = referenceForward(layout, weights, input, mb.label, masks, SEED_FOCAL_LOSS);
    expect(Math.abs(result.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    layout.batchNorms.forEach((bn, j) => {
      const n = bnValuesPerChannel(bn.name, 2, 8);
      for (let c = 0; c < bn.channels; c++) {
        const refMean = ref.moments[j]!.mean[c]!;
        const refVar = (ref.moments[j]!.variance[c]! * n) / (n - 1);
        expect(Math.abs(result.bnStats[bn.offset + c]! - refMean)).toBeLessThan(
          1e-4 * (1 + Math.abs(refMean)),
        );
        expect(Math.abs(result.bnStats[bn.offset + bn.channels + c]! - refVar) / refVar).toBeLessThan(1e-4);
      }
    });

    // Central differences (h = 1e-6 in float64) on 4 entries of every parameter tensor.
    const h = 1e-6;
    const pick = CounterRng.derive(11, 'gradient-check', 'indices');
    const rows: { name: string; tf: number; ref: number }[] = [];
    for (const p of layout.parameters) {
      for (let k = 0; k < Math.min(4, p.size); k++) {
        const i = p.offset + pick.int(p.size);
        const plus = Float64Array.from(weights);
        const minus = Float64Array.from(weights);
        plus[i]! += h;
        minus[i]! -= h;
        rows.push({
          name: `${p.name}[${i - p.offset}]`,
          tf: result.grads[i]!,
          ref: (lossAt(plus) - lossAt(minus)) / (2 * h),
        });
      }
    }
    const scale = Math.max(...rows.map((r) => Math.abs(r.ref)));
    // Conv biases before BatchNorm have a true gradient of 0 (BN removes them); an absolute floor of
    // 1e-4·max|g| keeps float32 rounding noise on such near-zero entries from counting as relative error.
    const errors = rows.map((r) => ({
      ...r,
      rel: Math.abs(r.tf - r.ref) / Math.max(Math.abs(r.ref), 1e-4 * scale),
    }));
    const worst = errors.reduce((a, b) => (b.rel > a.rel ? b : a));
    expect(rows.length).toBeGreaterThan(100);
    expect(worst.rel, `worst: ${JSON.stringify(worst)}`).toBeLessThan(1e-3);
    // Most entries are far from the floor, so this is a real relative check.
    expect(rows.filter((r) => Math.abs(r.ref) > 1e-4 * scale).length).toBeGreaterThan(rows.length * 0.7);
  });
});
