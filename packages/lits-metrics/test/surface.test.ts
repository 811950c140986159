// Surface distances against a brute-force reference: surfaces found by checking every neighbour directly and every
// pair of surface voxels compared, on small random shapes with anisotropic spacing.
import { describe, expect, it } from 'vitest';
import { CounterRng } from '@lits-ddp/counter-rng';
import {
  directedSurfaceDistances,
  squaredDistanceTransform,
  surfaceDistances,
  surfaceOf,
  LIVER,
  TUMOUR,
  type Connectivity,
  type Shape3,
} from '../src/index.js';

type Point = [number, number, number];

function points(mask: Uint8Array, shape: Shape3): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < mask.length; i++)
    if (mask[i])
      out.push([i % shape[0], Math.floor(i / shape[0]) % shape[1], Math.floor(i / (shape[0] * shape[1]))]);
  return out;
}

/** Surface by definition: a region voxel with a neighbour (within the connectivity) that is outside or background. */
function bruteSurface(inside: Uint8Array, shape: Shape3, connectivity: Connectivity): Point[] {
  const at = (x: number, y: number, z: number) =>
    x >= 0 && y >= 0 && z >= 0 && x < shape[0] && y < shape[1] && z < shape[2]
      ? inside[x + shape[0] * (y + shape[1] * z)]!
      : 0;
  return points(inside, shape).filter(([x, y, z]) => {
    for (let dx = -1; dx <= 1; dx++)
      for (let dy = -1; dy <= 1; dy++)
        for (let dz = -1; dz <= 1; dz++) {
          const n = Math.abs(dx) + Math.abs(dy) + Math.abs(dz);
          if (n === 0 || n > (connectivity === 6 ? 1 : connectivity === 18 ? 2 : 3)) continue;
          if (!at(x + dx, y + dy, z + dz)) return true;
        }
    return false;
  });
}

const distance = (a: Point, b: Point, s: Shape3) =>
  Math.hypot((a[0] - b[0]) * s[0], (a[1] - b[1]) * s[1], (a[2] - b[2]) * s[2]);

function bruteDirected(from: Point[], to: Point[], s: Shape3): number[] {
  return from.map((p) => Math.min(...to.map((q) => distance(p, q, s))));
}

/** Random blobs: a few overlapping ellipsoids, so shapes have holes, bumps and touch the border sometimes. */
function blobs(rng: CounterRng, shape: Shape3, count: number, label = 1): Uint8Array {
  const out = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (let b = 0; b < count; b++) {
    const c = shape.map((n) => rng.uniform(0, n));
    const r = shape.map((n) => rng.uniform(1, n / 2.5));
    for (let z = 0; z < shape[2]; z++)
      for (let y = 0; y < shape[1]; y++)
        for (let x = 0; x < shape[0]; x++) {
          const e = ((x - c[0]!) / r[0]!) ** 2 + ((y - c[1]!) / r[1]!) ** 2 + ((z - c[2]!) / r[2]!) ** 2;
          if (e <= 1) out[x + shape[0] * (y + shape[1] * z)] = label;
        }
  }
  return out;
}

describe('squaredDistanceTransform', () => {
  it('matches the brute-force nearest feature distance with anisotropic spacing', () => {
    const rng = CounterRng.derive(1, 'edt-test');
    for (let trial = 0; trial < 6; trial++) {
      const shape: Shape3 = [3 + rng.int(8), 3 + rng.int(8), 2 + rng.int(6)];
      const spacing: Shape3 = [rng.uniform(0.3, 2), rng.uniform(0.3, 2), rng.uniform(0.5, 5)];
      const features = new Uint8Array(shape[0] * shape[1] * shape[2]);
      for (let i = 0; i < features.length; i++) features[i] = rng.float64() < 0.08 ? 1 : 0;
      features[rng.int(features.length)] = 1;
      const d2 = squaredDistanceTransform(features, shape, spacing);
      const f = points(features, shape);
      const all = points(new Uint8Array(features.length).fill(1), shape);
      all.forEach((p, i) => {
        const expected = Math.min(...f.map((q) => distance(p, q, spacing))) ** 2;
        expect(d2[i]).toBeCloseTo(expected, 9);
      });
    }
  });

  it('is Infinity everywhere without a feature voxel and rejects bad spacing', () => {
    const d2 = squaredDistanceTransform(new Uint8Array(24), [2, 3, 4], [1, 1, 1]);
    expect([...d2].every((v) => v === Infinity)).toBe(true);
    expect(() => squaredDistanceTransform(new Uint8Array(24), [2, 3, 4], [1, 0, 1])).toThrow(/spacing/);
    expect(() => squaredDistanceTransform(new Uint8Array(23), [2, 3, 4], [1, 1, 1])).toThrow(/23 voxels/);
  });
});

describe('surfaces', () => {
  it('finds the surface of each connectivity as the brute-force definition, border voxels included', () => {
    const rng = CounterRng.derive(2, 'surface-test');
    for (let trial = 0; trial < 5; trial++) {
      const shape: Shape3 = [6 + rng.int(6), 6 + rng.int(6), 4 + rng.int(5)];
      const inside = blobs(rng, shape, 3);
      for (const c of [6, 18, 26] as const) {
        const got = points(surfaceOf(inside, shape, c), shape);
        expect(got).toEqual(bruteSurface(inside, shape, c));
      }
    }
  });

  it('keeps the centre of a 3×3×3 cube off the surface only when every neighbour is inside', () => {
    const shape: Shape3 = [5, 5, 5];
    const inside = new Uint8Array(125);
    for (let z = 1; z < 4; z++)
      for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) inside[x + 5 * (y + 5 * z)] = 1;
    for (const c of [6, 18, 26] as const) expect(points(surfaceOf(inside, shape, c), shape)).toHaveLength(26);
    // A full grid: only the border layer is surface (outside counts as background).
    const full = new Uint8Array(125).fill(1);
    expect(points(surfaceOf(full, shape, 6), shape)).toHaveLength(125 - 27);
  });
});

describe('surfaceDistances', () => {
  it('ASSD and MSSD match the brute-force reference on random shapes (LiTS connectivities 18 and 6)', () => {
    const rng = CounterRng.derive(3, 'assd-test');
    let checked = 0;
    for (let trial = 0; trial < 8; trial++) {
      const shape: Shape3 = [8 + rng.int(8), 8 + rng.int(8), 5 + rng.int(6)];
      const spacing: Shape3 = [rng.uniform(0.5, 1), rng.uniform(0.5, 1), rng.uniform(1, 5)];
      const pred = blobs(rng, shape, 2);
      const truth = blobs(rng, shape, 2);
      if (!pred.includes(1) || !truth.includes(1)) continue;
      const got = surfaceDistances(pred, truth, shape, spacing, LIVER)!;
      const s18p = bruteSurface(pred, shape, 18);
      const s18t = bruteSurface(truth, shape, 18);
      const all = [...bruteDirected(s18p, s18t, spacing), ...bruteDirected(s18t, s18p, spacing)];
      const assd = all.reduce((a, b) => a + b, 0) / all.length;
      const s6p = bruteSurface(pred, shape, 6);
      const s6t = bruteSurface(truth, shape, 6);
      const mssd = Math.max(...bruteDirected(s6p, s6t, spacing), ...bruteDirected(s6t, s6p, spacing));
      expect(got.assd).toBeCloseTo(assd, 9);
      expect(got.mssd).toBeCloseTo(mssd, 9);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(6);
  });

  it('gives each directed distance of the brute force, for any connectivity', () => {
    const rng = CounterRng.derive(4, 'directed-test');
    const shape: Shape3 = [9, 7, 6];
    const spacing: Shape3 = [0.7, 0.8, 2.5];
    const a = blobs(rng, shape, 2);
    const b = blobs(rng, shape, 2);
    for (const c of [6, 18, 26] as const) {
      const got = directedSurfaceDistances(a, b, shape, spacing, c);
      const sa = bruteSurface(a, shape, c);
      const sb = bruteSurface(b, shape, c);
      const aToB = bruteDirected(sa, sb, spacing);
      const bToA = bruteDirected(sb, sa, spacing);
      expect(got.aToB.length).toBe(aToB.length);
      aToB.forEach((d, i) => expect(got.aToB[i]).toBeCloseTo(d, 9));
      bToA.forEach((d, i) => expect(got.bToA[i]).toBeCloseTo(d, 9));
    }
  });

  it('measures in mm along the slice axis and works inside the regions’ box of a larger volume', () => {
    const shape: Shape3 = [20, 20, 20];
    const pred = new Uint8Array(8000);
    const truth = new Uint8Array(8000);
    pred[5 + 20 * (5 + 20 * 5)] = 2;
    truth[5 + 20 * (5 + 20 * 8)] = 2;
    const d = surfaceDistances(pred, truth, shape, [0.7, 0.7, 2.5], TUMOUR)!;
    expect(d.assd).toBeCloseTo(7.5, 12);
    expect(d.mssd).toBeCloseTo(7.5, 12);
    expect(surfaceDistances(pred, new Uint8Array(8000), shape, [1, 1, 1], TUMOUR)).toBeNull();
    expect(surfaceDistances(pred, truth, shape, [1, 1, 1], TUMOUR)).toEqual({ assd: 3, mssd: 3 });
    expect(surfaceDistances(truth, truth, shape, [1, 1, 1], LIVER)).toEqual({ assd: 0, mssd: 0 });
  });
});
