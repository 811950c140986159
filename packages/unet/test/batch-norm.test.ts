// BatchNorm running statistics against an independent float64 reference, with PyTorch's semantics (momentum 0.1):
// running_mean ← 0.9·running_mean + 0.1·batch mean, running_var ← 0.9·running_var + 0.1·unbiased batch variance,
// and eval mode normalises with the running statistics.
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
import { bnValuesPerChannel, referenceForward, type Moments, type Volume } from './reference/float64-unet.js';

let tf: Tfjs;
beforeAll(async () => {
  tf = (await loadEngine({ engine: 'cpu' })).tf;
});

const SEED = 17;
// float32 against float64: measured errors are ~1e-7.
const TOLERANCE = 1e-6;

function microBatch(step: number): MicroBatch {
  const voxels = 2 * 8 * 8 * 8;
  const rng = CounterRng.derive(SEED, 'batch-norm-test', step);
  const label = new Uint8Array(voxels);
  const image = new Float32Array(voxels);
  for (let i = 0; i < voxels; i++) {
    label[i] = rng.int(3);
    image[i] = Math.fround(3 + label[i]! * 0.7 + 2 * rng.normal());
  }
  return { image, label, batch: 2, shape: [8, 8, 8] };
}

const volume = (mb: MicroBatch): Volume => ({
  data: Float64Array.from(mb.image),
  shape: [mb.batch, ...mb.shape, 1],
});

const valuesPerChannel = (bnName: string) => bnValuesPerChannel(bnName, 2, 8);

describe('BatchNorm running statistics (width 2, 8³, batch 2)', () => {
  it('a training step moves them by 0.1 toward the batch mean and unbiased variance; eval mode uses them', () => {
    const model = UNet3D.create(tf, { seed: SEED, architecture: { width: 2 } });
    const layout = model.layout;
    let expected: Moments[] = [];
    let mb = microBatch(0);
    // Step 0 starts from PyTorch's initial buffers (mean 0, variance 1), step 1 from the buffers step 0 left.
    for (const step of [0, 1]) {
      mb = microBatch(step);
      const key = { seed: SEED, epoch: 0, step };
      const masks = layout.dropouts.map((d) =>
        dropoutMask({ ...key, microBatch: 0 }, d.index, mb.batch, d.channels, d.rate),
      );
      const weights = Float64Array.from(model.getWeights());
      const before = model.getRunningStats();
      const batch = referenceForward(layout, weights, volume(mb), mb.label, masks, SEED_FOCAL_LOSS).moments;
      model.trainStep([mb], key);
      const after = model.getRunningStats();

      let worstMean = 0;
      let worstVar = 0;
      let worstIfBiased = 0;
      expected = layout.batchNorms.map((bn, j) => {
        const n = valuesPerChannel(bn.name);
        const mean = new Float64Array(bn.channels);
        const variance = new Float64Array(bn.channels);
        for (let c = 0; c < bn.channels; c++) {
          const [im, iv] = [bn.offset + c, bn.offset + bn.channels + c];
          mean[c] = 0.9 * before[im]! + 0.1 * batch[j]!.mean[c]!;
          variance[c] = 0.9 * before[iv]! + 0.1 * ((batch[j]!.variance[c]! * n) / (n - 1));
          worstMean = Math.max(worstMean, Math.abs(after[im]! - mean[c]!) / (1 + Math.abs(mean[c]!)));
          worstVar = Math.max(worstVar, Math.abs(after[iv]! - variance[c]!) / variance[c]!);
          // What the biased (÷n) variance would give: the check below must be able to tell the two apart.
          const biased = 0.9 * before[iv]! + 0.1 * batch[j]!.variance[c]!;
          worstIfBiased = Math.max(worstIfBiased, Math.abs(after[iv]! - biased) / biased);
        }
        return { mean, variance };
      });
      if (step === 0) {
        expect([...before.subarray(0, 2)]).toEqual([0, 0]); // inc.bn1 running mean starts at 0 …
        expect([...before.subarray(2, 4)]).toEqual([1, 1]); // … and its running variance at 1
      }
      expect(worstMean, `step ${step} running mean`).toBeLessThan(TOLERANCE);
      expect(worstVar, `step ${step} running variance`).toBeLessThan(TOLERANCE);
      expect(worstIfBiased).toBeGreaterThan(100 * TOLERANCE);
      expect(model.bnBatchesTracked).toBe(step + 1);
    }

    // Eval mode: no dropout, each BN normalises with the running statistics the reference derived above.
    const weights = Float64Array.from(model.getWeights());
    const noMasks = layout.dropouts.map(() => null);
    const evalRef = referenceForward(
      layout,
      weights,
      volume(mb),
      mb.label,
      noMasks,
      SEED_FOCAL_LOSS,
      expected,
    );
    const batchStatsRef = referenceForward(layout, weights, volume(mb), mb.label, noMasks, SEED_FOCAL_LOSS);
    const got = model.predictProbabilities(mb.image, mb.shape, mb.batch);
    expect(got.length).toBe(evalRef.probabilities.length);
    let worst = 0;
    let offBatchStats = 0;
    for (let i = 0; i < got.length; i++) {
      worst = Math.max(worst, Math.abs(got[i]! - evalRef.probabilities[i]!));
      offBatchStats = Math.max(offBatchStats, Math.abs(got[i]! - batchStatsRef.probabilities[i]!));
    }
    expect(worst).toBeLessThan(TOLERANCE);
    // Normalising with the batch's own statistics instead would be far off.
    expect(offBatchStats).toBeGreaterThan(1e-2);
    model.dispose();
  });
});
