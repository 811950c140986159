import { CounterRng } from '@lits-ddp/counter-rng';
import { describe, expect, it } from 'vitest';
import { placeTumours, TUMOUR_MODEL, type LiverFrame } from '../src/phantom/tumours.js';
import type { Shape3 } from '../src/preprocess/grid.js';

const FOV: Shape3 = [358.4, 358.4, 300];
const LIVER: LiverFrame = { c: [-0.3, -0.05, 0.2], r: [0.36, 0.32, 0.49] };
const LIVER_HU = 60;

/** n cases' lesions from the model's own streams. */
function draw(n: number): ReturnType<typeof placeTumours>[] {
  return Array.from({ length: n }, (_, i) =>
    placeTumours(CounterRng.derive('tumour-model', i), LIVER, LIVER_HU, FOV),
  );
}

/** Diameter (mm) of a lesion along axis a. */
const diameterMm = (r: Shape3, a: number): number => r[a]! * FOV[a]!;

describe('phantom lesion model', () => {
  const cases = draw(2000);
  const withLesions = cases.filter((c) => c.length > 0);

  it('leaves about one case in ten tumour-free and gives the others a dominant lesion and satellites', () => {
    // Binomial(2000, 0.1): σ ≈ 13 cases, so 4σ is ±54.
    expect(Math.abs(cases.length - withLesions.length - 200)).toBeLessThan(54);
    const mean = withLesions.reduce((s, c) => s + c.length, 0) / withLesions.length;
    expect(mean).toBeGreaterThan(2.4);
    expect(mean).toBeLessThan(2.8);
    expect(Math.max(...withLesions.map((c) => c.length))).toBe(TUMOUR_MODEL.satelliteWeights.length);
  });

  it('draws sizes from a few mm to several cm, the dominant lesion from its own range', () => {
    const [dLo, dHi] = TUMOUR_MODEL.dominantDiameterMm;
    const [sLo, sHi] = TUMOUR_MODEL.satelliteDiameterMm;
    const [eLo, eHi] = TUMOUR_MODEL.elongation;
    for (const c of withLesions)
      c.forEach((t, i) => {
        const [lo, hi] = i === 0 ? [dLo, dHi] : [sLo, sHi];
        for (let a = 0; a < 3; a++) {
          expect(diameterMm(t.r, a)).toBeGreaterThanOrEqual(lo * eLo - 1e-9);
          expect(diameterMm(t.r, a)).toBeLessThanOrEqual(hi * eHi + 1e-9);
        }
      });
    // Log-uniform: half the dominant lesions lie below the geometric mean of the range (24.5 mm).
    const dominant = withLesions.map((c) => Math.cbrt(c[0]!.r.reduce((p, r, a) => p * r * FOV[a]!, 1)));
    const below = dominant.filter((d) => d < Math.sqrt(dLo * dHi)).length / dominant.length;
    expect(Math.abs(below - 0.5)).toBeLessThan(0.06);
  });

  it('makes a quarter of the patients hyperdense, the rest hypodense, one contrast per patient', () => {
    const hyper = withLesions.filter((c) => c[0]!.hu > LIVER_HU).length / withLesions.length;
    expect(Math.abs(hyper - TUMOUR_MODEL.hyperdenseShare)).toBeLessThan(0.05);
    for (const c of withLesions) {
      const contrasts = c.map((t) => t.hu - LIVER_HU);
      const [lo, hi] =
        contrasts[0]! > 0 ? TUMOUR_MODEL.hyperdenseContrastHu : TUMOUR_MODEL.hypodenseContrastHu;
      for (const k of contrasts) {
        expect(k).toBeGreaterThanOrEqual(lo - 5);
        expect(k).toBeLessThanOrEqual(hi + 5);
      }
      expect(Math.max(...contrasts) - Math.min(...contrasts)).toBeLessThanOrEqual(10);
    }
  });

  it('gives lesions of 30 mm and more a darker necrotic core, and centres every lesion in the liver', () => {
    for (const c of withLesions)
      for (const t of c) {
        const nominal = Math.max(...[0, 1, 2].map((a) => diameterMm(t.r, a))) / TUMOUR_MODEL.elongation[0];
        if (t.coreHu !== null) expect(t.coreHu).toBe(t.hu + TUMOUR_MODEL.necrosisHu);
        if (nominal < TUMOUR_MODEL.necrosisFromMm) expect(t.coreHu).toBeNull();
        const q = [0, 1, 2].reduce((s, a) => s + ((t.c[a]! - LIVER.c[a]!) / LIVER.r[a]!) ** 2, 0);
        expect(q).toBeLessThanOrEqual(0.75 ** 2 + 1e-12);
      }
  });

  it('is a function of its stream: the same key gives the same lesions', () => {
    expect(draw(5)).toEqual(draw(5));
  });
});
