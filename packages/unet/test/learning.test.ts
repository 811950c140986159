// Learning: a width-4 model on small synthetic cubes (a noisy ellipsoid "liver" with a "tumour", raw HU-like
// intensities) with the seed's focal loss and class weights. Budget: 60 steps of batch 2 at 12³ (Adam lr 1e-2,
// dropout 0.05); threshold: held-out liver IoU ≥ 0.6 in eval mode after them, and the training loss at most half
// its first value. Everything is seeded and the cpu engine is deterministic, so the outcome never varies.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadEngine, syntheticLiverCubes, UNet3D, type Tfjs } from '../src/index.js';

let tf: Tfjs;
beforeAll(async () => {
  tf = (await loadEngine({ engine: 'cpu' })).tf;
});

const STEPS = 60;
const LIVER_IOU_THRESHOLD = 0.6;

describe('learning', () => {
  it(`reaches liver IoU ≥ ${LIVER_IOU_THRESHOLD} on held-out cubes within ${STEPS} steps`, () => {
    const model = UNet3D.create(tf, {
      seed: 3,
      architecture: { width: 4, dropout: 0.05 },
      adam: { lr: 1e-2 },
    });
    const train = Array.from({ length: 8 }, (_, i) =>
      syntheticLiverCubes({ seed: 1, size: 12, cases: [2 * i, 2 * i + 1] }),
    );
    const heldOut = syntheticLiverCubes({ seed: 1, size: 12, cases: [100, 101, 102, 103] });
    const liverIou = () => model.evaluate(heldOut, { batch: 0 }).toSeedMetrics('val')['val_iou_1']!;
    const before = liverIou();
    const losses: number[] = [];
    for (let step = 0; step < STEPS; step++)
      losses.push(model.trainStep([train[step % train.length]!], { seed: 3, epoch: 0, step }).loss);
    const after = liverIou();
    const recent = losses.slice(-8).reduce((a, b) => a + b, 0) / 8;
    expect(before).toBeLessThan(0.3);
    expect(after, `liver IoU after ${STEPS} steps`).toBeGreaterThanOrEqual(LIVER_IOU_THRESHOLD);
    expect(recent).toBeLessThan(losses[0]! / 2);
  });
});
