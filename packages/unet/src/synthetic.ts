// Small synthetic CT-like cubes for tests, benchmarks and smoke runs: a noisy ellipsoid "liver" with a spherical
// "tumour" inside, in raw HU-like intensities (like the seed, no normalisation). Drawn from counter-rng.
import { CounterRng } from '@lits-ddp/counter-rng';
import type { MicroBatch } from './micro-batch.js';

export interface SyntheticCubeOptions {
  readonly seed: number | string;
  /** Edge length (multiple of 4). */
  readonly size: number;
  /** Case indices to generate; case i is the same whatever else is generated. */
  readonly cases: readonly number[];
}

const HU = { background: -100, liver: 60, tumour: 10, noise: 20 } as const;

function oneCase(
  seed: number | string,
  size: number,
  index: number,
  image: Float32Array,
  label: Uint8Array,
): void {
  const rng = CounterRng.derive(seed, 'synthetic-cube', index);
  const centre = [0, 1, 2].map(() => size / 2 + rng.uniform(-size / 10, size / 10));
  const radii = [0, 1, 2].map(() => size * rng.uniform(0.22, 0.34));
  const tumourRadius = size * rng.uniform(0.07, 0.11);
  // Tumour centre: inside the liver, at most half a radius away from the liver centre.
  const tumour = centre.map((c, a) => c + rng.uniform(-0.4, 0.4) * (radii[a] as number));
  const noise = rng.child('noise');
  for (let z = 0; z < size; z++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const p = [z + 0.5, y + 0.5, x + 0.5];
        let e = 0;
        let t = 0;
        for (let a = 0; a < 3; a++) {
          e += (((p[a] as number) - (centre[a] as number)) / (radii[a] as number)) ** 2;
          t += ((p[a] as number) - (tumour[a] as number)) ** 2;
        }
        const cls = e <= 1 ? (Math.sqrt(t) <= tumourRadius ? 2 : 1) : 0;
        const v = (z * size + y) * size + x;
        label[v] = cls;
        const mean = cls === 2 ? HU.tumour : cls === 1 ? HU.liver : HU.background;
        image[v] = Math.fround(mean + HU.noise * noise.normal());
      }
}

/** The requested cases as one batch [cases, size, size, size, 1]. */
export function syntheticLiverCubes(options: SyntheticCubeOptions): MicroBatch {
  const { size, cases } = options;
  if (!Number.isSafeInteger(size) || size < 4 || size % 4 !== 0)
    throw new RangeError(`synthetic cube size must be a positive multiple of 4, got ${size}`);
  if (cases.length === 0) throw new RangeError('synthetic cubes: no cases requested');
  const voxels = size ** 3;
  const image = new Float32Array(cases.length * voxels);
  const label = new Uint8Array(cases.length * voxels);
  cases.forEach((c, i) =>
    oneCase(
      options.seed,
      size,
      c,
      image.subarray(i * voxels, (i + 1) * voxels),
      label.subarray(i * voxels, (i + 1) * voxels),
    ),
  );
  return { image, label, batch: cases.length, shape: [size, size, size] };
}
