import { describe, expect, it } from 'vitest';
import { CounterRng } from '../src/index.js';

const draw = (rng: CounterRng, n: number): number[] => Array.from({ length: n }, () => rng.uint32());

describe('CounterRng', () => {
  it('has fixed test vectors: the stream for a purpose never changes', () => {
    // Pinned outputs. If these change, every seeded run, phantom and checkpoint changes with them.
    expect(draw(CounterRng.derive(0, 'init'), 4)).toEqual(draw(CounterRng.derive(0, 'init'), 4));
    expect(draw(CounterRng.derive(0, 'init'), 6)).toMatchInlineSnapshot(`
      [
        4190655864,
        3373566171,
        790581818,
        3622351913,
        488432025,
        3065127855,
      ]
    `);
    expect(draw(CounterRng.derive(42, 'dropout', 3, 7, 1, 12), 3)).toMatchInlineSnapshot(`
      [
        3931853750,
        1493798729,
        2405811848,
      ]
    `);
  });

  it('keys streams by purpose: different paths give unrelated streams', () => {
    const a = draw(CounterRng.derive(1, 'dropout', 0, 0, 0, 1), 8);
    const b = draw(CounterRng.derive(1, 'dropout', 0, 0, 0, 2), 8);
    const c = draw(CounterRng.derive(2, 'dropout', 0, 0, 0, 1), 8);
    expect(a).not.toEqual(b);
    expect(a).not.toEqual(c);
    // 'ab' + 'c' and 'a' + 'bc' must not collide.
    expect(draw(CounterRng.derive(1, 'ab', 'c'), 4)).not.toEqual(draw(CounterRng.derive(1, 'a', 'bc'), 4));
    expect(draw(CounterRng.derive(1, '1'), 4)).not.toEqual(draw(CounterRng.derive(1, 1), 4));
  });

  it('gives random access: word i is the same however the stream got there', () => {
    const seq = CounterRng.derive(7, 'x');
    const all = draw(seq, 1000);
    const random = CounterRng.derive(7, 'x');
    for (const i of [999, 0, 513, 4, 3, 7]) expect(random.wordAt(i)).toBe(all[i]);
    const resumed = CounterRng.derive(7, 'x').seek(600);
    expect(draw(resumed, 400)).toEqual(all.slice(600));
    expect(resumed.offset).toBe(1000);
  });

  it('child streams are derived, deterministic and distinct', () => {
    const parent = CounterRng.derive(5, 'phantom');
    expect(draw(parent.child('case', 3), 4)).toEqual(
      draw(CounterRng.derive(5, 'phantom').child('case', 3), 4),
    );
    expect(draw(parent.child('case', 3), 4)).not.toEqual(draw(parent.child('case', 4), 4));
  });

  it('float32 and float64 lie in [0, 1) with a sane mean and spread', () => {
    const rng = CounterRng.derive(3, 'uniform');
    let sum32 = 0;
    let sum64 = 0;
    let sq = 0;
    let outside = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const f = rng.float32();
      const d = rng.float64();
      if (!(f >= 0 && f < 1 && d >= 0 && d < 1) || Math.fround(f) !== f) outside++;
      sum32 += f;
      sum64 += d;
      sq += (d - 0.5) ** 2;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum32 / n - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(sum64 / n - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(sq / n - 1 / 12)).toBeLessThan(0.002);
  });

  it('normal() has mean 0 and variance 1', () => {
    const rng = CounterRng.derive(3, 'normal');
    const n = 100_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      s += z;
      s2 += z * z;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.02);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.02);
  });

  it('int(n) is unbiased over small ranges and covers the edges', () => {
    const rng = CounterRng.derive(9, 'int');
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[rng.int(6)]! += 1;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(450);
    expect(rng.int(1)).toBe(0);
    const big = rng.int(2 ** 32);
    expect(big >= 0 && big < 2 ** 32).toBe(true);
    expect(() => rng.int(0)).toThrow(RangeError);
  });

  it('permutation(n) is a permutation, and changes with the purpose', () => {
    const p = CounterRng.derive(0, 'shuffle', 0).permutation(131);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 131 }, (_, i) => i));
    const q = CounterRng.derive(0, 'shuffle', 1).permutation(131);
    expect([...q]).not.toEqual([...p]);
    expect([...CounterRng.derive(0, 'shuffle', 0).permutation(131)]).toEqual([...p]);
  });

  it('rejects indices that cannot be encoded exactly', () => {
    expect(() => CounterRng.derive(0.5, 'x')).toThrow(RangeError);
    expect(() => CounterRng.derive(0, 'x').seek(-1)).toThrow(RangeError);
  });
});
