import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  discoverDataset,
  generatePhantomDataset,
  generatePhantomVolumes,
  PHANTOM_HU,
  TUMOUR_MODEL,
  readNifti,
  readNiftiHeader,
} from '../src/index.js';
import { tempDir } from './test-environment.js';

const tmp = tempDir('phantom');
afterAll(tmp.cleanup);

function meanStd(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

describe('phantom generator', () => {
  it('is reproducible from (seed, case) and differs between cases and seeds', () => {
    const a = generatePhantomVolumes(5, 2);
    const b = generatePhantomVolumes(5, 2);
    expect(Buffer.compare(Buffer.from(a.image.buffer), Buffer.from(b.image.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.label), Buffer.from(b.label))).toBe(0);
    const c = generatePhantomVolumes(5, 3);
    const d = generatePhantomVolumes(6, 2);
    expect(Buffer.compare(Buffer.from(a.image.buffer), Buffer.from(c.image.buffer))).not.toBe(0);
    expect(Buffer.compare(Buffer.from(a.image.buffer), Buffer.from(d.image.buffer))).not.toBe(0);
  });

  it('has the anatomy: air, fat, muscle, bone, a large liver and lesions of another density inside it', () => {
    const counts = { tumours: 0, cases: 0 };
    for (let id = 0; id < 6; id++) {
      const v = generatePhantomVolumes('anatomy', id);
      const [nx, ny] = v.shape;
      const liver: number[] = [];
      const tumour: number[] = [];
      const air: number[] = [];
      let fat = 0;
      let bone = 0;
      let enclosed = 0;
      let tumourVoxels = 0;
      v.label.forEach((l, i) => {
        if (l === 1) liver.push(v.image[i]!);
        if (l === 2) {
          tumour.push(v.image[i]!);
          tumourVoxels++;
          const x = i % nx;
          if (x > 0 && x < nx - 1 && v.label[i - 1]! >= 1 && v.label[i + 1]! >= 1) enclosed++;
        }
        const x = i % nx;
        const y = Math.floor(i / nx) % ny;
        if (x < 3 && y < 3) air.push(v.image[i]!);
        if (v.image[i]! > -140 && v.image[i]! < -60) fat++;
        if (v.image[i]! > 600) bone++;
      });
      expect(liver.length / v.label.length).toBeGreaterThan(0.02);
      expect(Math.abs(meanStd(liver).mean - PHANTOM_HU.liver)).toBeLessThan(7);
      const noise = meanStd(air);
      expect(Math.abs(noise.mean - PHANTOM_HU.air)).toBeLessThan(3);
      expect(noise.std).toBeGreaterThan(12);
      expect(noise.std).toBeLessThan(18);
      expect(fat).toBeGreaterThan(v.label.length * 0.01);
      expect(bone).toBeGreaterThan(20);
      if (tumourVoxels > 0) {
        // Hypodense (30–75 HU below the liver, necrotic cores lower) or hyperdense (20–55 HU above).
        const contrast = meanStd(tumour).mean - meanStd(liver).mean;
        expect(Math.abs(contrast), `case ${id} lesion − liver HU`).toBeGreaterThan(20);
        expect(contrast).toBeGreaterThan(-101);
        expect(contrast).toBeLessThan(56);
        // Lesions lie in the liver: most lesion voxels have liver or lesion on both sides along x (a lesion that
        // reaches past the liver's surface is cut there, so some lie on its edge).
        expect(enclosed / tumourVoxels).toBeGreaterThan(0.75);
        counts.tumours += v.tumours;
      }
      expect(v.tumours).toBeGreaterThanOrEqual(0);
      expect(v.tumours).toBeLessThanOrEqual(TUMOUR_MODEL.satelliteWeights.length);
      counts.cases++;
    }
    expect(counts.tumours).toBeGreaterThan(0);
  });

  it('each tissue has its HU (air, fat, muscle ≈ 40, bone ≈ 700, liver, lesions) with σ 15 noise', () => {
    // The noise comes from its own stream, so σ = 0 draws the same anatomy without noise: its values are the tissue
    // masks, checked first against the generator's geometry (spine and muscle columns that every case has).
    const tissues = ['air', 'fat', 'muscle', 'bone'] as const;
    // The values the README documents (liver ≈ 60 and each case's lesion contrast are drawn per case).
    const documented = { air: -1000, fat: -100, muscle: 40, bone: 700 };
    expect(PHANTOM_HU).toEqual({ ...documented, liver: 60 });
    let tumourVoxels = 0;
    for (let id = 0; id < 3; id++) {
      const clean = generatePhantomVolumes('tissues', id, { noiseSigma: 0 });
      const noisy = generatePhantomVolumes('tissues', id);
      expect(Buffer.compare(Buffer.from(clean.label), Buffer.from(noisy.label))).toBe(0);
      const [nx, ny, nz] = clean.shape;
      const value = (x: number, y: number, z: number): number => clean.image[x + nx * (y + ny * z)]!;
      for (let z = 0; z < nz; z++) {
        // Spine: centred in x, at v = body.cy + 0.62·body.b ∈ [0.34, 0.42] with radius 0.085 (y = 44 is v ≈ 0.39).
        expect([value(31, 44, z), value(32, 44, z)]).toEqual([documented.bone, documented.bone]);
        // Muscle: u ≈ 0.52 on the body's mid-line lies inside the muscle ellipse and right of any liver (u ≤ 0.24).
        expect(value(48, 32, z)).toBe(documented.muscle);
      }
      const liverValues = new Set<number>();
      const byTissue = new Map<string, number[]>(tissues.map((t) => [t, []]));
      byTissue.set('liver', []);
      const unexplained: string[] = [];
      clean.image.forEach((hu, i) => {
        const l = clean.label[i]!;
        if (l === 1) liverValues.add(hu);
        const tissue = l === 1 ? 'liver' : l === 2 ? 'tumour' : tissues.find((t) => documented[t] === hu);
        if (!tissue) unexplained.push(`voxel ${i}: ${hu} HU, label ${l}`);
        else if (tissue !== 'tumour') byTissue.get(tissue)!.push(noisy.image[i]!);
      });
      expect(unexplained.slice(0, 5)).toEqual([]);
      // The liver is one value within ±5 of 60 HU (drawn per case).
      expect(liverValues.size).toBe(1);
      const liverHu = [...liverValues][0]!;
      expect(Math.abs(liverHu - 60)).toBeLessThanOrEqual(5);
      // Lesion voxels hold their lesion's HU: a few values (one per lesion and necrotic core), none the liver's.
      const lesionValues = new Set(clean.image.filter((_, i) => clean.label[i] === 2));
      expect(lesionValues.size).toBeLessThanOrEqual(2 * clean.tumours);
      expect(lesionValues.has(liverHu)).toBe(false);
      const residuals = [...clean.image.keys()]
        .filter((i) => clean.label[i] === 2)
        .map((i) => noisy.image[i]! - clean.image[i]!);
      tumourVoxels += residuals.length;
      if (residuals.length > 50) {
        expect(Math.abs(meanStd(residuals).mean)).toBeLessThan((4 * 15) / Math.sqrt(residuals.length) + 0.5);
        expect(meanStd(residuals).std).toBeGreaterThan(12);
      }
      for (const [tissue, values] of byTissue) {
        expect(values.length, `${tissue} voxels in case ${id}`).toBeGreaterThan(50);
        const { mean, std } = meanStd(values);
        const target = tissue === 'liver' ? liverHu : documented[tissue as (typeof tissues)[number]];
        // Four standard errors of the mean, plus rounding to int16.
        expect(Math.abs(mean - target), `${tissue} mean ${mean}`).toBeLessThan(
          (4 * 15) / Math.sqrt(values.length) + 0.5,
        );
        expect(std, `${tissue} σ`).toBeGreaterThan(12);
        expect(std, `${tissue} σ`).toBeLessThan(18);
      }
    }
    expect(tumourVoxels).toBeGreaterThan(0);
  });

  it('writes a LiTS-format folder: int16 CT and uint8 masks, anisotropic spacing, LPS affine', async () => {
    const outDir = join(tmp.dir, 'lits');
    const started = performance.now();
    const cases = await generatePhantomDataset({ outDir, cases: 8, seed: 11 });
    process.stderr.write(
      `phantom: 8 cases of 64×64×32 written in ${(performance.now() - started).toFixed(0)} ms\n`,
    );
    expect(cases.map((c) => c.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const found = await discoverDataset(outDir);
    expect(found.layout).toBe('lits');
    expect(found.cases.map((c) => c.image)).toEqual(cases.map((c) => c.image));
    const image = await readNiftiHeader(join(outDir, 'volume-3.nii.gz'));
    const label = await readNifti(join(outDir, 'segmentation-3.nii.gz'), { native: true });
    expect(image.datatype.name).toBe('int16');
    expect(label.datatype.name).toBe('uint8');
    expect(image.shape).toEqual([64, 64, 32]);
    expect(image.orientation).toBe('LPS');
    expect(image.spacing[0]).toBeCloseTo(5.6, 5);
    expect(image.spacing[2]).toBeCloseTo(9.375, 5);
    expect(image.affine).toEqual(label.affine);
    expect(image.transform.qformCode).toBe(1);
    expect(image.affineSource).toBe('sform');
    const values = [...new Set(label.data)].sort();
    expect(values.every((v) => v <= 2)).toBe(true);
    expect(values).toContain(1);
  });

  it('takes a size and spacing (a LiTS-like 512×512 slice keeps 0.7 mm pixels)', () => {
    const v = generatePhantomVolumes(1, 0, { size: [512, 512, 4], spacing: [0.7, 0.7, 2.5] });
    expect(v.shape).toEqual([512, 512, 4]);
    expect(v.affine[0]![0]).toBeCloseTo(-0.7, 9);
    expect(v.affine[1]![1]).toBeCloseTo(-0.7, 9);
    expect(v.affine[2]![2]).toBeCloseTo(2.5, 9);
    expect(() => generatePhantomVolumes(1, 0, { size: [2, 64, 64] })).toThrow(
      /phantom size must be 3 integers/,
    );
  });
});
