import type { CounterRng } from '@lits-ddp/counter-rng';
import type { Shape3 } from '../preprocess/grid.js';

/**
 * The phantoms' lesion model, after what is known of LiTS (sources in the lits-data README): about one case in ten
 * has no tumour (13 of the 131 training cases); the others have a dominant lesion and often smaller satellites, from
 * a few mm to several cm; hypodense (most metastases in portal-venous CT) or hyperdense relative to the liver, one
 * kind per patient; large lesions with a necrotic, darker centre.
 */
export const TUMOUR_MODEL = {
  /** Share of tumour-free cases. */
  tumourFreeShare: 0.1,
  /** P(satellites = i) for i = 0, 1, … in a case with a tumour: mean 1.6. */
  satelliteWeights: [0.35, 0.25, 0.15, 0.1, 0.08, 0.07],
  /** Diameters are log-uniform in these ranges (mm): medians 24 mm and 10 mm. */
  dominantDiameterMm: [10, 60],
  satelliteDiameterMm: [4, 25],
  /** Axis ratios of the ellipsoid relative to its diameter. */
  elongation: [0.75, 1.25],
  /** Share of patients whose lesions are hyperdense (the rest hypodense). */
  hyperdenseShare: 0.25,
  /** Lesion HU minus liver HU: a case's lesions share a contrast within these ranges, ±5 HU each. */
  hypodenseContrastHu: [-70, -30],
  hyperdenseContrastHu: [25, 50],
  /** Lesions at least this wide (mm) have a necrotic core (inner half of the radius) this much darker. */
  necrosisFromMm: 30,
  necrosisHu: -25,
} as const;

/** One lesion: an ellipsoid in the volume's normalised coordinates (each axis −1..1 over the field of view). */
export interface Tumour {
  c: Shape3;
  r: Shape3;
  /** Lesion HU (before noise); the core is `coreHu` where the lesion has one. */
  hu: number;
  coreHu: number | null;
}

/** The liver's ellipsoid, as the lesions need it: centre and semi-axes in normalised coordinates. */
export interface LiverFrame {
  c: Shape3;
  r: Shape3;
}

/** Lesions of a case: 0, or 1 dominant plus its satellites. */
function drawCount(rng: CounterRng): number {
  if (rng.float64() < TUMOUR_MODEL.tumourFreeShare) return 0;
  let u = rng.float64();
  const w = TUMOUR_MODEL.satelliteWeights;
  for (let i = 0; i < w.length; i++) {
    u -= w[i]!;
    if (u < 0) return 1 + i;
  }
  return w.length;
}

function logUniform(rng: CounterRng, [lo, hi]: readonly [number, number]): number {
  return lo * Math.exp(Math.log(hi / lo) * rng.float64());
}

/**
 * The lesions of one case, from its own stream. `fovMm` is the volume's field of view, so that sizes are physical
 * whatever the voxel count. A lesion's centre lies inside the liver's undeformed ellipsoid (within 0.75 of its
 * semi-axes, which its wobble never pulls in); a lesion may reach past the liver's surface, and only its part inside
 * the liver is painted, as subcapsular lesions look in CT.
 */
export function placeTumours(rng: CounterRng, liver: LiverFrame, liverHu: number, fovMm: Shape3): Tumour[] {
  const m = TUMOUR_MODEL;
  const count = drawCount(rng);
  const hyper = rng.float64() < m.hyperdenseShare;
  const [lo, hi] = hyper ? m.hyperdenseContrastHu : m.hypodenseContrastHu;
  const contrast = rng.uniform(lo, hi);
  return Array.from({ length: count }, (_, i) => {
    const diameter = logUniform(rng, i === 0 ? m.dominantDiameterMm : m.satelliteDiameterMm);
    const r = [0, 1, 2].map(
      (a) => ((diameter / 2) * rng.uniform(m.elongation[0], m.elongation[1])) / (fovMm[a]! / 2),
    ) as Shape3;
    let p: Shape3;
    do p = [rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)];
    while (p[0] ** 2 + p[1] ** 2 + p[2] ** 2 > 1);
    const c = [0, 1, 2].map((a) => liver.c[a]! + 0.75 * p[a]! * liver.r[a]!) as Shape3;
    const hu = liverHu + contrast + rng.uniform(-5, 5);
    const coreHu = diameter >= m.necrosisFromMm ? hu + m.necrosisHu : null;
    return { c, r, hu, coreHu };
  });
}

/** The HU a lesion gives normalised point (u, v, w), or null outside every lesion (later lesions paint over). */
export function tumourHuAt(tumours: readonly Tumour[], u: number, v: number, w: number): number | null {
  let hu: number | null = null;
  for (const t of tumours) {
    const q = ((u - t.c[0]) / t.r[0]) ** 2 + ((v - t.c[1]) / t.r[1]) ** 2 + ((w - t.c[2]) / t.r[2]) ** 2;
    if (q < 1) hu = t.coreHu !== null && q < 0.25 ? t.coreHu : t.hu;
  }
  return hu;
}
