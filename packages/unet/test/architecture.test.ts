import { beforeAll, describe, expect, it } from 'vitest';
import {
  forwardUNet,
  loadEngine,
  readSlot,
  SEED_ARCHITECTURE,
  tensorSlots,
  UNet3D,
  unetLayout,
  writeSlot,
  type Tfjs,
} from '../src/index.js';

let tf: Tfjs;
beforeAll(async () => {
  tf = (await loadEngine({ engine: 'cpu' })).tf;
});

describe('UNet3D at the seed defaults', () => {
  it('has exactly 2,339,491 trainable parameters with the per-block counts of seed.md §1', () => {
    const layout = unetLayout(SEED_ARCHITECTURE);
    expect(layout.totalParams).toBe(2_339_491);
    expect(Object.fromEntries(layout.blocks.map((b) => [b.name, b.params]))).toEqual({
      inc: 28_704,
      down1: 174_496,
      down2: 697_152,
      mid: 885_504,
      up1: 442_752,
      up2: 110_784,
      outc: 99,
    });
    const size = (name: string) => layout.parameters.find((p) => p.name === name)!.size;
    // Layer-level numbers from the seed's PL model summary.
    expect(size('inc.conv1.weight') + size('inc.conv1.bias')).toBe(896);
    expect(size('down1.down.weight') + size('down1.down.bias')).toBe(8_224);
    expect(size('up1.conv1.weight') + size('up1.conv1.bias')).toBe(331_840);
    expect(size('up2.conv1.weight') + size('up2.conv1.bias')).toBe(82_976);
    // 12 BatchNorms with 1,792 running mean/variance values; 16 Dropout3d layers, 4 of them at 0.001.
    expect(layout.batchNorms).toHaveLength(12);
    expect(layout.bnStatsLength).toBe(1_792);
    expect(layout.dropouts.map((d) => d.rate)).toEqual([
      0.25, 0.25, 0.001, 0.25, 0.25, 0.001, 0.25, 0.25, 0.25, 0.25, 0.001, 0.25, 0.25, 0.001, 0.25, 0.25,
    ]);
  });

  it('keeps the parameter order documented in the README and offsets contiguous', () => {
    const layout = unetLayout();
    expect(layout.parameters.slice(0, 9).map((p) => p.name)).toEqual([
      'inc.conv1.weight',
      'inc.conv1.bias',
      'inc.bn1.gamma',
      'inc.bn1.beta',
      'inc.conv2.weight',
      'inc.conv2.bias',
      'inc.bn2.gamma',
      'inc.bn2.beta',
      'down1.down.weight',
    ]);
    expect(layout.parameters.at(-1)!.name).toBe('outc.conv.bias');
    let offset = 0;
    for (const p of layout.parameters) {
      expect(p.offset).toBe(offset);
      offset += p.size;
    }
    // The concat order [upsampled 4w, skip 2w] fixes up1.conv1's input channels at 192.
    const up1 = layout.parameters.find((p) => p.name === 'up1.conv1.weight')!;
    expect(up1.shape).toEqual([3, 3, 3, 192, 64]);
    expect(up1.inputGroups).toEqual([128, 64]);
  });

  it('splits the kernels after a concatenation into per-input tensors and reassembles them exactly', () => {
    const layout = unetLayout({ ...SEED_ARCHITECTURE, width: 4 });
    const slots = tensorSlots(layout);
    expect(slots.filter((s) => s.channels).map((s) => [s.name, s.shape])).toEqual([
      ['up1.conv1.weight#0', [3, 3, 3, 16, 8]],
      ['up1.conv1.weight#1', [3, 3, 3, 8, 8]],
      ['up2.conv1.weight#0', [3, 3, 3, 8, 4]],
      ['up2.conv1.weight#1', [3, 3, 3, 4, 4]],
    ]);
    const flat = Float32Array.from({ length: layout.totalParams }, (_, i) => i);
    const copy = new Float32Array(layout.totalParams);
    for (const slot of slots) writeSlot(slot, readSlot(slot, flat), copy);
    expect(copy).toEqual(flat);
    // Input channel c of tap t of up2.conv1 belongs to group 1 iff c ≥ 8.
    const g1 = slots.find((s) => s.name === 'up2.conv1.weight#1')!;
    const spec = g1.spec;
    expect(readSlot(g1, flat)[0]).toBe(spec.offset + 8 * 4);
  });

  it('builds the seed-size model; its output is [N, D, H, W, 3] probabilities that sum to 1', () => {
    const model = UNet3D.create(tf, { seed: 0 });
    expect(model.paramCount).toBe(2_339_491);
    // D, H and W differ so that a swapped or flattened axis shows in the shape.
    const shape = [4, 8, 12] as const;
    const voxels = 4 * 8 * 12;
    const image = new Float32Array(2 * voxels).map((_, i) => Math.fround(Math.sin(i) * 100));
    const running = model.layout.batchNorms.map((bn) => {
      const stats = model.getRunningStats();
      return {
        mean: tf.tensor1d(stats.slice(bn.offset, bn.offset + bn.channels)),
        variance: tf.tensor1d(stats.slice(bn.offset + bn.channels, bn.offset + 2 * bn.channels)),
      };
    });
    const params = tensorSlots(model.layout).map((slot) =>
      tf.tensor(readSlot(slot, model.getWeights()), [...slot.shape]),
    );
    const [logits, probabilities] = tf.tidy(() => {
      const x = tf.tensor5d(image, [2, ...shape, 1]);
      const out = forwardUNet(tf, model.layout, params, x, { kind: 'eval', running });
      return [out.logits, out.probabilities];
    });
    expect(logits!.shape).toEqual([2, 4, 8, 12, 3]);
    expect(probabilities!.shape).toEqual([2, 4, 8, 12, 3]);
    const fromTensor = probabilities!.dataSync();

    // The public API returns the same [N, D, H, W, C] values, flat in that order.
    const probs = model.predictProbabilities(image, shape, 2);
    expect(probs).toEqual(fromTensor);
    // Sample 1 alone gives the second half: the batch axis is outermost and eval mode couples no samples.
    const second = model.predictProbabilities(image.subarray(voxels), shape, 1);
    let worstSample = 0;
    for (let i = 0; i < second.length; i++)
      worstSample = Math.max(worstSample, Math.abs(second[i]! - probs[3 * voxels + i]!));
    expect(worstSample).toBeLessThan(1e-6);
    let worst = 0;
    for (let v = 0; v < 2 * voxels; v++) {
      const sum = probs[3 * v]! + probs[3 * v + 1]! + probs[3 * v + 2]!;
      worst = Math.max(worst, Math.abs(sum - 1));
      expect(probs[3 * v]).toBeGreaterThanOrEqual(0);
    }
    expect(worst).toBeLessThan(1e-6);
    tf.dispose([logits!, probabilities!, ...params, ...running.flatMap((m) => [m.mean, m.variance])]);
    model.dispose();
  });

  it('initialises like PyTorch: conv weights and biases in ±1/√fanIn, BN γ = 1 and β = 0, running var 1', () => {
    const model = UNet3D.create(tf, { seed: 5, architecture: { width: 4 } });
    const w = model.getWeights();
    for (const p of model.layout.parameters) {
      const values = w.subarray(p.offset, p.offset + p.size);
      if (p.role === 'gamma') expect(values.every((v) => v === 1)).toBe(true);
      else if (p.role === 'beta') expect(values.every((v) => v === 0)).toBe(true);
      else {
        const bound = 1 / Math.sqrt(p.fanIn);
        expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(bound);
        if (p.size >= 64) expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0.8 * bound);
      }
    }
    const running = model.getRunningStats();
    const bn = model.layout.batchNorms[0]!;
    expect([...running.subarray(0, bn.channels)].every((v) => v === 0)).toBe(true);
    expect([...running.subarray(bn.channels, 2 * bn.channels)].every((v) => v === 1)).toBe(true);
    // Same seed → same weights; another seed → different ones.
    expect(UNet3D.create(tf, { seed: 5, architecture: { width: 4 } }).weightHash()).toBe(model.weightHash());
    expect(UNet3D.create(tf, { seed: 6, architecture: { width: 4 } }).weightHash()).not.toBe(
      model.weightHash(),
    );
  });

  it('leaves no tensors behind across training, evaluation and prediction', () => {
    const model = UNet3D.create(tf, { seed: 3, architecture: { width: 2 } });
    const image = Float32Array.from({ length: 1024 }, (_, i) => Math.fround(Math.cos(i)));
    const mb = {
      image,
      label: new Uint8Array(1024).map((_, i) => i % 3),
      batch: 2,
      shape: [8, 8, 8] as const,
    };
    const counts: number[] = [];
    for (let step = 0; step < 3; step++) {
      model.trainStep([mb, mb], { seed: 3, epoch: 0, step });
      model.evaluate(mb, { batch: step });
      model.predictProbabilities(mb.image, mb.shape, 2);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    const before = tf.memory().numTensors;
    model.dispose();
    expect(tf.memory().numTensors).toBeLessThan(before);
  });

  it('rejects bad shapes and inputs with errors naming the field', () => {
    const model = UNet3D.create(tf, { seed: 1, architecture: { width: 2 } });
    const key = { seed: 1, epoch: 0, step: 0, microBatch: 0 };
    const ok = {
      image: new Float32Array(512),
      label: new Uint8Array(512),
      batch: 1,
      shape: [8, 8, 8] as const,
    };
    expect(() => model.computeGradients({ ...ok, shape: [8, 8, 6] }, key)).toThrow(
      /shape\[2\] = 6.*multiple of 4/,
    );
    expect(() => model.computeGradients({ ...ok, image: new Float32Array(500) }, key)).toThrow(
      /microBatch.image has 500 values; expected .* = 512/,
    );
    const badLabel = new Uint8Array(512);
    badLabel[17] = 3;
    expect(() => model.computeGradients({ ...ok, label: badLabel }, key)).toThrow(/label\[17\] = 3/);
    expect(() => model.computeGradients(ok, { ...key, step: -1 })).toThrow(/key.step/);
    expect(() =>
      model.computeGradients(
        { ...ok, image: new Float32Array(64), label: new Uint8Array(64), shape: [4, 4, 4] },
        key,
      ),
    ).toThrow(/BatchNorm needs ≥ 2 values per channel/);
    expect(() => UNet3D.create(tf, { seed: 1, architecture: { width: 0 } })).toThrow(
      /width must be a positive integer/,
    );
    expect(() => model.applyGradients(new Float32Array(3), new Float32Array(3))).toThrow(
      /flatGrads has 3 values/,
    );
  });
});
