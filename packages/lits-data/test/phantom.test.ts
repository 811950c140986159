import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  discoverDataset,
  generatePhantomDataset,
  generatePhantomVolumes,
  PHANTOM_HU,
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

  it('has the anatomy: air, fat, muscle, bone, a large liver and hypodense tumours inside it', () => {
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
        expect(Math.abs(meanStd(tumour).mean - PHANTOM_HU.tumour)).toBeLessThan(5);
        expect(enclosed / tumourVoxels).toBeGreaterThan(0.95);
        counts.tumours += v.tumours;
      }
      expect(v.tumours).toBeGreaterThanOrEqual(0);
      expect(v.tumours).toBeLessThanOrEqual(4);
      counts.cases++;
    }
    expect(counts.tumours).toBeGreaterThan(0);
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
