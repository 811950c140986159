import { beforeAll, describe, expect, it } from 'vitest';
import { channelMask, dropoutMask, loadEngine, type Tfjs } from '../src/index.js';

let tf: Tfjs;
beforeAll(async () => {
  tf = (await loadEngine({ engine: 'cpu' })).tf;
});

const key = { seed: 42, epoch: 3, step: 17, microBatch: 2 };

describe('Dropout3d masks', () => {
  it('drop channels at rate p and scale the kept ones by 1/(1 − p)', () => {
    for (const p of [0.25, 0.5, 0.001]) {
      const mask = dropoutMask(key, 4, 8, 8192, p);
      const dropped = mask.filter((v) => v === 0).length;
      const kept = mask.filter((v) => v === Math.fround(1 / (1 - p))).length;
      expect(dropped + kept).toBe(mask.length);
      const sd = Math.sqrt(mask.length * p * (1 - p));
      expect(Math.abs(dropped - p * mask.length)).toBeLessThan(5 * sd + 1);
    }
    expect(dropoutMask(key, 0, 2, 16, 0).every((v) => v === 1)).toBe(true);
  });

  it('are a function of the key: same key → same mask, any other part → another mask', () => {
    const mask = dropoutMask(key, 4, 2, 64, 0.25);
    expect(dropoutMask({ ...key }, 4, 2, 64, 0.25)).toEqual(mask);
    const same = (m: Float32Array) => m.every((v, i) => v === mask[i]);
    expect(same(dropoutMask({ ...key, seed: 43 }, 4, 2, 64, 0.25))).toBe(false);
    expect(same(dropoutMask({ ...key, epoch: 4 }, 4, 2, 64, 0.25))).toBe(false);
    expect(same(dropoutMask({ ...key, step: 18 }, 4, 2, 64, 0.25))).toBe(false);
    expect(same(dropoutMask({ ...key, microBatch: 3 }, 4, 2, 64, 0.25))).toBe(false);
    expect(same(dropoutMask(key, 5, 2, 64, 0.25))).toBe(false);
  });

  it('applied to a tensor, zero whole (sample, channel) maps and scale the rest exactly', () => {
    for (const batch of [1, 3]) {
      const c = 16;
      const mask = dropoutMask(key, 1, batch, c, 0.25);
      const shape = [batch, 4, 4, 4, c];
      const x = tf.randomUniform(shape, 0.5, 2, 'float32', 1);
      const y = tf.mul(x, channelMask(tf, mask, shape));
      const xs = x.dataSync();
      const ys = y.dataSync();
      const perSample = 64 * c;
      for (let i = 0; i < ys.length; i++) {
        const m = mask[Math.floor(i / perSample) * c + (i % c)]!;
        expect(ys[i]).toBe(Math.fround(xs[i]! * m));
      }
      expect(mask.includes(0)).toBe(true);
    }
  });
});
