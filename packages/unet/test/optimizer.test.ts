import { describe, expect, it } from 'vitest';
import { Adam, OrderedAverage, ReduceLROnPlateau, SEED_PLATEAU } from '../src/index.js';

describe('Adam', () => {
  it('follows PyTorch’s update, hand-computed for two steps', () => {
    const adam = new Adam(1, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    const p = Float32Array.of(1);
    adam.update(p, Float32Array.of(0.5));
    // m = 0.05, v = 0.00025, m̂ = 0.5, √v̂ = 0.5 → p = 1 − 0.1·0.5/(0.5 + 1e-8)
    expect(p[0]).toBeCloseTo(0.9, 6);
    adam.update(p, Float32Array.of(-0.25));
    // m = 0.02, v = 0.00031225; step = 0.1/0.19 · 0.02 / (√0.00031225/√0.001999 + 1e-8)
    const expected = 0.9 - (0.1 / 0.19) * (0.02 / (Math.sqrt(0.00031225) / Math.sqrt(0.001999) + 1e-8));
    expect(p[0]).toBeCloseTo(expected, 6);
    expect(adam.step).toBe(2);
  });

  it('gives identical bits from identical inputs and continues exactly from its state', () => {
    const grads = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e-3);
    const run = (steps: number) => {
      const adam = new Adam(1000);
      const p = Float32Array.from({ length: 1000 }, (_, i) => Math.cos(i));
      for (let s = 0; s < steps; s++) adam.update(p, grads);
      return { adam, p };
    };
    const a = run(5);
    const b = run(5);
    expect(Buffer.from(a.p.buffer).equals(Buffer.from(b.p.buffer))).toBe(true);
    const partial = run(3);
    const state = partial.adam.state();
    const resumed = new Adam(1000, state.config, { step: state.step, m: state.m, v: state.v });
    resumed.update(partial.p, grads);
    resumed.update(partial.p, grads);
    expect(Buffer.from(partial.p.buffer).equals(Buffer.from(a.p.buffer))).toBe(true);
    expect(() => a.adam.update(new Float32Array(3), new Float32Array(3))).toThrow(/Adam has 1000 moments/);
  });
});

describe('ReduceLROnPlateau (mode min, factor 0.1, patience 10, threshold 1e-4 rel, min_lr 1e-6)', () => {
  it('reduces after 11 epochs without a relative improvement above 1e-4 and stops at min_lr', () => {
    const s = new ReduceLROnPlateau(1e-4, SEED_PLATEAU);
    expect(s.step(1.0)).toBe(false);
    for (let i = 0; i < 10; i++) expect(s.step(0.99995)).toBe(false); // < 1e-4 better: still a bad epoch
    expect(s.step(0.99995)).toBe(true);
    expect(s.lr).toBeCloseTo(1e-5, 12);
    expect(s.step(0.5)).toBe(false); // a real improvement resets the count
    for (let i = 0; i < 11; i++) s.step(0.5);
    expect(s.lr).toBeCloseTo(1e-6, 12);
    for (let i = 0; i < 30; i++) expect(s.step(0.5)).toBe(false);
    expect(s.lr).toBeCloseTo(1e-6, 12);
  });

  it('serialises to JSON and continues identically', () => {
    const a = new ReduceLROnPlateau(1e-4);
    [1, 0.9, 0.95, 0.95, 0.95].forEach((v) => a.step(v));
    const b = ReduceLROnPlateau.fromState(JSON.parse(JSON.stringify(a.state())));
    for (let i = 0; i < 12; i++) expect(b.step(0.95)).toBe(a.step(0.95));
    expect(b.state()).toEqual(a.state());
    expect(() => ReduceLROnPlateau.fromState({ ...a.state(), lr: 'x' }, 'ckpt scheduler')).toThrow(
      /ckpt scheduler.lr must be a finite number/,
    );
  });
});

describe('OrderedAverage', () => {
  it('averages in the order given and refuses out-of-order micro-batches', () => {
    const avg = new OrderedAverage(2);
    avg.add(0, Float32Array.of(1, 2));
    avg.add(1, Float32Array.of(3, 5));
    expect([...avg.mean()]).toEqual([2, 3.5]);
    expect(() => avg.add(3, Float32Array.of(0, 0))).toThrow(
      /micro-batch 3 added out of order \(expected 2\)/,
    );
  });
});
