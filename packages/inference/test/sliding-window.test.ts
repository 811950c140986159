import { describe, expect, it } from 'vitest';
import { CounterRng } from '@lits-ddp/counter-rng';
import {
  gaussianImportance,
  planWindows,
  slidingWindowArgmax,
  windowStarts,
  type Shape3,
  type WindowPredictor,
} from '../src/index.js';

/** Window-dependent probabilities: logits mix the voxel value with its position inside the window. */
const positional =
  (classes: number): WindowPredictor =>
  (image, [d, h, w], batch) => {
    const out = new Float32Array(image.length * classes);
    for (let i = 0; i < image.length; i++) {
      const local = i % (d * h * w);
      const ld = Math.floor(local / (h * w));
      const lh = Math.floor(local / w) % h;
      const x = image[i]!;
      const logits = Array.from({ length: classes }, (_, c) =>
        c === 0 ? 0 : Math.sin(x * c + ld) + Math.cos(lh * 0.7 * c),
      );
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const s = e.reduce((a, b) => a + b, 0);
      e.forEach((v, c) => (out[i * classes + c] = v / s));
    }
    expect(batch).toBe(image.length / (d * h * w));
    return out;
  };

/** Reference: a full-size accumulator, same window order and float32 arithmetic, then argmax. */
function naive(
  image: Float32Array,
  grid: Shape3,
  predict: WindowPredictor,
  window: number,
  overlap: number,
  C: number,
) {
  const plan = planWindows(grid, window, overlap);
  const [D, H, W] = grid;
  const [wd, wh, ww] = plan.window;
  const g = gaussianImportance(plan.window);
  const acc = new Float32Array(D * H * W * C);
  const pad = Math.min(...image);
  for (const d0 of plan.starts[0])
    for (const h0 of plan.starts[1])
      for (const w0 of plan.starts[2]) {
        const win = new Float32Array(wd * wh * ww).fill(pad);
        for (let d = 0; d < wd; d++)
          for (let h = 0; h < wh; h++)
            for (let w = 0; w < ww; w++)
              if (d0 + d < D && h0 + h < H && w0 + w < W)
                win[(d * wh + h) * ww + w] = image[((d0 + d) * H + h0 + h) * W + w0 + w]!;
        const p = predict(win, plan.window, 1);
        for (let d = 0; d < wd; d++)
          for (let h = 0; h < wh; h++)
            for (let w = 0; w < ww; w++) {
              if (d0 + d >= D || h0 + h >= H || w0 + w >= W) continue;
              const l = (d * wh + h) * ww + w;
              for (let c = 0; c < C; c++)
                acc[(((d0 + d) * H + h0 + h) * W + w0 + w) * C + c]! += g[l]! * p[l * C + c]!;
            }
      }
  const labels = new Uint8Array(D * H * W);
  for (let v = 0; v < labels.length; v++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (acc[v * C + c]! > acc[v * C + best]!) best = c;
    labels[v] = best;
  }
  return labels;
}

describe('window plan', () => {
  it('spaces starts evenly, first at 0 and last flush with the end', () => {
    expect(windowStarts(256, 128, 0.5)).toEqual([0, 64, 128]);
    expect(windowStarts(256, 128, 0)).toEqual([0, 128]);
    expect(windowStarts(100, 64, 0.5)).toEqual([0, 18, 36]);
    expect(windowStarts(64, 64, 0.5)).toEqual([0]);
    expect(windowStarts(30, 64, 0.5)).toEqual([0]);
    expect(() => windowStarts(100, 64, 1)).toThrow(/overlap must be in \[0, 1\)/);
  });

  it('shrinks the window on axes shorter than it, to a multiple of 4', () => {
    const plan = planWindows([10, 40, 33], 16, 0.5);
    expect(plan.window).toEqual([12, 16, 16]);
    expect(plan.starts).toEqual([[0], [0, 8, 16, 24], [0, 6, 11, 17]]);
    expect(plan.count).toBe(16);
    expect(() => planWindows([8, 8, 8], 10, 0.5)).toThrow(/multiple of 4/);
  });

  it('weights the window centre 1 and falls off symmetrically', () => {
    const g = gaussianImportance([4, 8, 8]);
    expect(Math.max(...g)).toBeLessThanOrEqual(1);
    expect(g[(1 * 8 + 3) * 8 + 3]).toBeCloseTo(g[(2 * 8 + 4) * 8 + 4]!, 7);
    expect(g[0]).toBeGreaterThan(0);
    expect(g[0]).toBeLessThan(1e-5);
  });
});

describe('slidingWindowArgmax', () => {
  it('matches a full-size accumulator exactly, for several grids, windows, overlaps and batch sizes', () => {
    const rng = CounterRng.derive(5, 'sliding-window-test');
    const cases: Array<[Shape3, number, number, number]> = [
      [[20, 18, 13], 8, 0.5, 1],
      [[9, 24, 16], 12, 0.25, 3],
      [[32, 8, 8], 8, 0, 2],
      [[6, 7, 5], 16, 0.5, 1],
    ];
    for (const [grid, window, overlap, batchSize] of cases) {
      const image = new Float32Array(grid[0] * grid[1] * grid[2]);
      rng.fillUniform(image, -3, 3);
      const C = 3;
      const predict = positional(C);
      const progress: number[] = [];
      const got = slidingWindowArgmax(image, grid, predict, {
        window,
        overlap,
        classes: C,
        batchSize,
        onWindow: (done, total) => progress.push(done, total),
      });
      expect(got.labels).toEqual(naive(image, grid, predict, window, overlap, C));
      const perRow = got.plan.starts[1].length * got.plan.starts[2].length;
      expect(progress).toHaveLength(2 * got.plan.starts[0].length * Math.ceil(perRow / batchSize));
      expect(progress.slice(-2)).toEqual([got.plan.count, got.plan.count]);
      expect(new Set(got.labels).size).toBeGreaterThan(1);
      expect(got.accumulatorBytes).toBe(got.plan.window[0] * grid[1] * grid[2] * C * 4);
    }
  });

  it('gives the voxel-wise argmax when probabilities depend only on the voxel', () => {
    const grid: Shape3 = [17, 11, 9];
    const image = new Float32Array(17 * 11 * 9);
    CounterRng.derive(6, 'pointwise').fillUniform(image, 0, 3);
    const pointwise: WindowPredictor = (img) => {
      const out = new Float32Array(img.length * 3);
      img.forEach((x, i) => (out[i * 3 + Math.min(2, Math.floor(x))] = 1));
      return out;
    };
    const { labels } = slidingWindowArgmax(image, grid, pointwise, { window: 8, classes: 3 });
    expect(labels).toEqual(Uint8Array.from(image, (x) => Math.min(2, Math.floor(x))));
  });

  it('pads windows that run past a short axis with the pad value, and checks the predictor output', () => {
    const grid: Shape3 = [5, 6, 7];
    const image = new Float32Array(5 * 6 * 7).fill(3);
    const seen: number[] = [];
    const probe: WindowPredictor = (img, shape) => {
      expect(shape).toEqual([8, 8, 8]);
      seen.push(img[0]!, img[img.length - 1]!);
      return new Float32Array(img.length * 2).fill(0.5);
    };
    slidingWindowArgmax(image, grid, probe, { window: 8, classes: 2, padValue: -1024 });
    expect(seen).toEqual([3, -1024]);
    const broken: WindowPredictor = (img) => new Float32Array(img.length);
    expect(() => slidingWindowArgmax(image, grid, broken, { window: 8, classes: 2 })).toThrow(
      /predictor returned 512 values; expected 1024/,
    );
  });
});
