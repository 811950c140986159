import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  describeForeignLabels,
  discoverDataset,
  generatePhantomDataset,
  generatePhantomVolumes,
  parseLabelMap,
  readNifti,
  validateDataset,
  writeNifti,
  type NiftiTransform,
  type ValidationReport,
} from '../src/index.js';
import { tempDir } from './test-environment.js';

const tmp = tempDir('dataset');
afterAll(tmp.cleanup);

const SIZE: [number, number, number] = [16, 16, 8];

async function phantomSet(name: string, cases: number): Promise<string> {
  const dir = join(tmp.dir, name);
  await generatePhantomDataset({ outDir: dir, cases, size: SIZE, seed: 21 });
  return dir;
}

function transform(): NiftiTransform {
  return generatePhantomVolumes(21, 0, { size: SIZE }).transform;
}

function problemFor(report: ValidationReport, file: string): string {
  const found = report.problems.filter((p) => p.file.endsWith(file));
  expect(found, `a problem for ${file} in ${JSON.stringify(report.problems)}`).toHaveLength(1);
  return found[0]!.reason;
}

describe('discoverDataset', () => {
  it('finds LiTS cases in the folder and one level down ("Training Batch 1/2")', async () => {
    const dir = join(tmp.dir, 'batches');
    await generatePhantomDataset({ outDir: join(dir, 'Training Batch 1'), cases: 2, size: SIZE });
    await generatePhantomDataset({
      outDir: join(dir, 'Training Batch 2'),
      cases: 2,
      size: SIZE,
      firstId: 28,
      compress: false,
    });
    writeFileSync(join(dir, 'Training Batch 1', '._volume-0.nii.gz'), 'mac resource fork');
    const ds = await discoverDataset(dir);
    expect(ds.layout).toBe('lits');
    expect(ds.cases.map((c) => c.id)).toEqual([0, 1, 28, 29]);
    expect(ds.cases[2]!.image).toMatch(/Training Batch 2\/volume-28\.nii$/);
    expect(ds.problems).toEqual([]);
  });

  it('finds MSD Task03 cases from dataset.json, by name without it, and inside a parent folder', async () => {
    const task = join(tmp.dir, 'msd', 'Task03_Liver');
    const lits = await phantomSet('msd-source', 3);
    mkdirSync(join(task, 'imagesTr'), { recursive: true });
    mkdirSync(join(task, 'labelsTr'), { recursive: true });
    for (const id of [0, 1, 2]) {
      writeFileSync(
        join(task, 'imagesTr', `liver_${id}.nii.gz`),
        readFileSync(join(lits, `volume-${id}.nii.gz`)),
      );
      writeFileSync(
        join(task, 'labelsTr', `liver_${id}.nii.gz`),
        readFileSync(join(lits, `segmentation-${id}.nii.gz`)),
      );
    }
    writeFileSync(join(task, 'imagesTr', '._liver_0.nii.gz'), 'junk');
    const byName = await discoverDataset(task);
    expect(byName.layout).toBe('msd');
    expect(byName.cases.map((c) => c.id)).toEqual([0, 1, 2]);
    const json = {
      name: 'Liver',
      training: [0, 2].map((id) => ({
        image: `./imagesTr/liver_${id}.nii.gz`,
        label: `./labelsTr/liver_${id}.nii.gz`,
      })),
      test: [],
    };
    writeFileSync(join(task, 'dataset.json'), JSON.stringify(json));
    const fromJson = await discoverDataset(join(tmp.dir, 'msd'));
    expect(fromJson.root).toBe(task);
    expect(fromJson.cases.map((c) => c.id)).toEqual([0, 2]);
    expect((await validateDataset(task)).ok).toBe(true);
    writeFileSync(join(task, 'dataset.json'), '{"training": 5}');
    await expect(discoverDataset(task)).rejects.toThrow(
      /dataset\.json: "training" must be a list of \{image, label\}/,
    );
    writeFileSync(
      join(task, 'dataset.json'),
      JSON.stringify({ training: [{ image: 'a/liver_1.nii.gz', label: 2 }] }),
    );
    await expect(discoverDataset(task)).rejects.toThrow(
      /dataset\.json: .*\(field \/training\/0\/label must be string\)/,
    );
    writeFileSync(join(task, 'dataset.json'), '{"training": [');
    await expect(discoverDataset(task)).rejects.toThrow(/dataset\.json: invalid JSON \(/);
    // A dataset.json that cannot be read is an error, not a folder without one.
    rmSync(join(task, 'dataset.json'));
    mkdirSync(join(task, 'dataset.json'));
    await expect(discoverDataset(task)).rejects.toThrow(/dataset\.json: is a folder, not a file \(EISDIR\)/);
    rmSync(join(task, 'dataset.json'), { recursive: true });
  });
});

describe('validateDataset', () => {
  it('accepts a generated phantom set, float masks holding exactly 0/1/2, and a singleton 4th dimension', async () => {
    const dir = await phantomSet('valid', 3);
    const label = await readNifti(join(dir, 'segmentation-1.nii.gz'));
    await writeNifti(join(dir, 'segmentation-1.nii.gz'), { ...label, data: Float32Array.from(label.data) });
    const image = await readNifti(join(dir, 'volume-2.nii.gz'), { native: true });
    await writeNifti(join(dir, 'volume-2.nii.gz'), { ...image, shape: [...SIZE, 1] });
    const report = await validateDataset(dir);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, layout: 'lits', caseCount: 3, validCases: [0, 1, 2] });
  });

  it('reports each bad input with its file and reason', async () => {
    const dir = await phantomSet('broken', 9);
    const t = transform();
    const count = SIZE[0] * SIZE[1] * SIZE[2];
    // 0: truncated gzip
    const gz = readFileSync(join(dir, 'volume-0.nii.gz'));
    writeFileSync(join(dir, 'volume-0.nii.gz'), gz.subarray(0, Math.floor(gz.length / 2)));
    // 1: zero-byte mask
    writeFileSync(join(dir, 'segmentation-1.nii.gz'), '');
    // 2: a 2-D image
    rmSync(join(dir, 'volume-2.nii.gz'));
    await writeNifti(join(dir, 'volume-2.nii'), { shape: [16, 16], data: new Int16Array(256), transform: t });
    // 3: label 7
    const labels = (await readNifti(join(dir, 'segmentation-3.nii.gz'), { native: true })).data as Uint8Array;
    labels.fill(7, 0, 5);
    await writeNifti(join(dir, 'segmentation-3.nii.gz'), { shape: SIZE, data: labels, transform: t });
    // 4: shape mismatch
    await writeNifti(join(dir, 'segmentation-4.nii.gz'), {
      shape: [16, 16, 7],
      data: new Uint8Array(16 * 16 * 7).fill(1),
      transform: t,
    });
    // 5: missing mask
    rmSync(join(dir, 'segmentation-5.nii.gz'));
    // 6: NaN voxels in a float image
    const nan = Float32Array.from({ length: count }, (_, i) => (i % 500 === 7 ? NaN : -100));
    await writeNifti(join(dir, 'volume-6.nii.gz'), { shape: SIZE, data: nan, transform: t });
    // 7: geometry mismatch
    const shifted = { ...t, sform: t.sform.map((r, i) => (i === 0 ? [r[0]!, r[1]!, r[2]!, r[3]! + 5] : r)) };
    const seg7 = await readNifti(join(dir, 'segmentation-7.nii.gz'), { native: true });
    await writeNifti(join(dir, 'segmentation-7.nii.gz'), { ...seg7, transform: shifted });

    const report = await validateDataset(dir);
    expect(report.ok).toBe(false);
    expect(report.caseCount).toBe(8);
    expect(report.validCases).toEqual([8]);
    expect(problemFor(report, 'volume-0.nii.gz')).toMatch(
      /^gzip stream truncated after \d+\.\d kB \(\d+\.\d kB inflated\)$/,
    );
    expect(problemFor(report, 'segmentation-1.nii.gz')).toBe('empty file (0 bytes)');
    expect(problemFor(report, 'volume-2.nii')).toBe(
      '2-D image (shape 16×16); need a 3-D volume (a 4th dimension of 1 is fine)',
    );
    expect(problemFor(report, 'segmentation-3.nii.gz')).toBe(describeForeignLabels([[7, 5]]));
    expect(problemFor(report, 'segmentation-4.nii.gz')).toBe(
      'shape 16×16×7 differs from volume-4.nii.gz (16×16×8)',
    );
    expect(problemFor(report, 'volume-5.nii.gz')).toBe(
      'no mask (expected segmentation-5.nii or segmentation-5.nii.gz)',
    );
    expect(problemFor(report, 'volume-6.nii.gz')).toBe(`${Math.ceil((count - 7) / 500)} NaN voxels`);
    expect(problemFor(report, 'segmentation-7.nii.gz')).toMatch(
      /^geometry differs from volume-7\.nii\.gz: affines differ by up to 5\.00 mm \(tolerance 0\.001\)$/,
    );
    await expect(readNifti(join(dir, 'volume-0.nii.gz'))).rejects.toThrow(
      /volume-0\.nii\.gz: gzip stream truncated after/,
    );
  });

  it('with a label map, accepts the values it names and reports the ones it leaves foreign', async () => {
    const dir = await phantomSet('mapped', 1);
    const file = join(dir, 'segmentation-0.nii.gz');
    const mask = await readNifti(file, { native: true });
    const stored = (mask.data as Uint8Array).map((v, i) =>
      v === 1 ? 5 : v === 2 ? 6 : i % 50 === 0 ? 9 : 0,
    );
    await writeNifti(file, { ...mask, data: stored });
    const nines = stored.filter((v) => v === 9).length;
    const withRest = await validateDataset(dir, { labelMap: parseLabelMap('5:1,6:2,*:0') });
    expect(withRest.problems).toEqual([]);
    expect(withRest.validCaseFiles).toEqual([{ id: 0, image: join(dir, 'volume-0.nii.gz'), label: file }]);
    const pairsOnly = await validateDataset(dir, { labelMap: parseLabelMap('5:1,6:2') });
    expect(problemFor(pairsOnly, 'segmentation-0.nii.gz')).toBe(describeForeignLabels([[9, nines]]));
    const liverOnly = await validateDataset(dir, { labelMap: parseLabelMap('6:2,*:0') });
    expect(liverOnly.ok).toBe(true); // tumour alone is something to centre on
    const nothing = await validateDataset(dir, { labelMap: parseLabelMap('*:0') });
    expect(problemFor(nothing, 'segmentation-0.nii.gz')).toBe(
      'no liver: no voxel has class 1 (liver) or 2 (tumour) under the label map *:0, so there is no cube to centre',
    );
  });

  it('reports a folder with no cases', async () => {
    const dir = join(tmp.dir, 'empty');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'nothing here');
    const report = await validateDataset(dir);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      { file: dir, caseId: null, reason: expect.stringMatching(/^no cases found: expected volume-N/) },
    ]);
    await expect(discoverDataset(dir)).rejects.toThrow(/empty: no cases found/);
    await expect(discoverDataset(join(tmp.dir, 'nope'))).rejects.toThrow(/nope: folder not found/);
  });
});
