// One validation for every entry point: each defect of the issue, built here as a synthetic case, is refused by
// `validateDataset`, by preprocessing itself and by `lits-data preprocess`, with the same per-file reason.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeForeignLabels,
  generatePhantomVolumes,
  loadCube,
  minimumVolumeShape,
  parseLabelMap,
  preprocessCase,
  preprocessDataset,
  resolvePreprocessConfig,
  runLitsDataCli,
  seedPresetCube,
  validateDataset,
  writeNifti,
  type CaseFiles,
  type NiftiData,
  type NiftiTransform,
  type PhantomVolumes,
  type SeedPresetConfig,
  type Shape3,
  type ValidationReport,
} from '../src/index.js';
import { tempDir } from './test-environment.js';

const tmp = tempDir('rules');
afterAll(tmp.cleanup);

const SIZE: [number, number, number] = [32, 32, 16];
// No downscaling and a 32³ cube over the whole 32×32×16 volume: a cube's label counts are its mask's.
const CONFIG = { preset: 'seed', targetSlices: 16, downscale: 1, cubeSize: 32 } as const;
const CUBE_FLAGS = ['--cube', '32', '--target-slices', '16', '--downscale', '1'];
const SEED = 6;
let phantom: PhantomVolumes;

beforeAll(() => {
  phantom = generatePhantomVolumes(SEED, 0, { size: SIZE });
  expect(phantom.label.includes(2), 'the phantom must have tumour voxels for the class-2 counts').toBe(true);
});

interface CaseEdit {
  image?: NiftiData;
  label?: NiftiData;
  shape?: number[];
  labelTransform?: NiftiTransform;
  sclSlope?: number;
  imageName?: string;
}

/** A one-case LiTS folder from the phantom, with the edits applied. */
async function caseFolder(name: string, edit: CaseEdit = {}): Promise<CaseFiles & { dir: string }> {
  const dir = join(tmp.dir, name);
  mkdirSync(dir, { recursive: true });
  const shape = edit.shape ?? phantom.shape;
  const image = join(dir, edit.imageName ?? 'volume-0.nii.gz');
  const label = join(dir, 'segmentation-0.nii.gz');
  await writeNifti(image, {
    shape,
    data: edit.image ?? phantom.image,
    transform: phantom.transform,
    sclSlope: edit.sclSlope,
    sclInter: 0,
    dataIsScaled: edit.sclSlope === undefined,
  });
  await writeNifti(label, {
    shape,
    data: edit.label ?? phantom.label,
    transform: edit.labelTransform ?? phantom.transform,
  });
  return { dir, id: 0, image, label };
}

function relabel(map: Record<number, number>, Type: { from(a: ArrayLike<number>): NiftiData } = Uint8Array) {
  return Type.from(Array.from(phantom.label, (v) => map[v] ?? v));
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function lits(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  };
  const code = await runLitsDataCli(args, io);
  return { code, stdout, stderr };
}

function onlyProblem(report: ValidationReport): { file: string; reason: string } {
  expect(report.ok).toBe(false);
  expect(report.problems, JSON.stringify(report.problems)).toHaveLength(1);
  return report.problems[0]!;
}

function cubeFiles(cache: string): string[] {
  const dir = join(cache, 'cubes');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** validate, preprocessCase and `lits-data preprocess` all refuse the case with `reason` on `file`. */
async function refusedEverywhere(
  c: CaseFiles & { dir: string },
  file: 'image' | 'label',
  reason: string | RegExp,
  extra: string[] = [],
  config: Parameters<typeof preprocessCase>[1] = CONFIG,
): Promise<void> {
  const problem = onlyProblem(await validateDataset(c.dir, { preprocessing: config }));
  expect(problem.file).toBe(c[file]);
  if (typeof reason === 'string') expect(problem.reason).toBe(reason);
  else expect(problem.reason).toMatch(reason);
  await expect(preprocessCase(c, config)).rejects.toThrow(`${c[file]}: ${problem.reason}`);
  const cache = join(c.dir, 'cache');
  const run = await lits('preprocess', c.dir, '--cache', cache, ...extra);
  expect(run.code).toBe(1);
  expect(run.stderr).toContain(`lits-data: ${c.dir}: 1 problem (no valid case left; nothing preprocessed)`);
  expect(run.stderr).toContain(`\n${c[file]}: ${problem.reason}\n`);
  expect(cubeFiles(cache)).toEqual([]);
}

function classCounts(label: Uint8Array): [number, number, number] {
  const n: [number, number, number] = [0, 0, 0];
  for (const v of label) n[v as 0 | 1 | 2]++;
  return n;
}

async function cubeOf(dir: string, ...flags: string[]): Promise<ReturnType<typeof loadCube>> {
  const run = await lits('preprocess', dir, '--cache', join(dir, 'cache'), ...CUBE_FLAGS, '--json', ...flags);
  expect(run.code, run.stderr).toBe(0);
  const manifest = JSON.parse(run.stdout) as { entries: Array<{ file: string }> };
  return loadCube(manifest.entries[0]!.file);
}

describe('label values', () => {
  it('liver stored as 5 is refused without a label map (never clipped to tumour) and is liver with --labels liver=5', async () => {
    // TotalSegmentator style: liver (with its tumours) is 5; 1 and 2 are other organs (spleen, kidney).
    const organs = Uint8Array.from(phantom.label, (v, i) => (v > 0 ? 5 : i % 97 === 0 ? 1 + (i % 2) : 0));
    const total = await caseFolder('liver-5', { label: organs });
    const liverVoxels = phantom.label.filter((v) => v > 0).length;
    await refusedEverywhere(total, 'label', describeForeignLabels([[5, liverVoxels]]), CUBE_FLAGS, CONFIG);

    const reference = await caseFolder('liver-1', { label: relabel({ 2: 1 }) });
    const expected = await cubeOf(reference.dir);
    const mapped = await cubeOf(total.dir, '--labels', 'liver=5');
    const counts = classCounts(mapped.label);
    expect(counts[1]).toBeGreaterThan(0);
    expect(counts[2]).toBe(0);
    expect(counts).toEqual(classCounts(expected.label));
    expect(Buffer.from(mapped.label).equals(Buffer.from(expected.label))).toBe(true);
  });

  it('liver 5 and tumour 6 mapped with --label-map 5:1,6:2,*:0 give the cube of the LiTS-coded mask', async () => {
    const lits01 = await caseFolder('lits-coded');
    const coded = await caseFolder('liver-5-tumour-6', { label: relabel({ 1: 5, 2: 6 }) });
    const expected = await cubeOf(lits01.dir);
    const mapped = await cubeOf(coded.dir, '--label-map', '5:1,6:2,*:0');
    const counts = classCounts(mapped.label);
    expect(counts[1]).toBeGreaterThan(0);
    expect(counts[2]).toBeGreaterThan(0);
    expect(counts).toEqual(classCounts(expected.label));
    expect(Buffer.from(mapped.label).equals(Buffer.from(expected.label))).toBe(true);
  });

  it('labels 3, 7 and 0.5 are refused, naming each value and its voxel count', async () => {
    const label = Float32Array.from(phantom.label);
    const background = [...label.keys()].filter((i) => label[i] === 0);
    background.slice(0, 3).forEach((i) => (label[i] = 3));
    background.slice(3, 5).forEach((i) => (label[i] = 7));
    background.slice(5, 9).forEach((i) => (label[i] = 0.5));
    const c = await caseFolder('labels-3-7-half', { label });
    const reason = describeForeignLabels([
      [0.5, 4],
      [3, 3],
      [7, 2],
    ]);
    expect(reason).toMatch(/found 0\.5 \(4 voxels\), 3 \(3 voxels\), 7 \(2 voxels\)$/);
    await refusedEverywhere(c, 'label', reason, CUBE_FLAGS);
  });

  it('a mask without liver or tumour is refused by validate, not first by preprocessing', async () => {
    const c = await caseFolder('no-liver', { label: new Uint8Array(phantom.label.length) });
    await refusedEverywhere(
      c,
      'label',
      /^no liver: no voxel has class 1 \(liver\) or 2 \(tumour\)/,
      CUBE_FLAGS,
    );
  });
});

describe('CT values', () => {
  it('16 NaN voxels in the CT are refused (the improved preset spread them to the whole cube)', async () => {
    const image = Float32Array.from(phantom.image);
    for (let k = 0; k < 16; k++) image[1000 + 37 * k] = NaN;
    const c = await caseFolder('nan', { image });
    const improved = { preset: 'improved' as const, targetSpacing: [20, 20, 20] as Shape3, cubeSize: 8 };
    const flags = ['--preset', 'improved', '--spacing', '20x20x20', '--cube', '8'];
    await refusedEverywhere(c, 'image', '16 NaN voxels', flags, improved);
  });

  it('an int16 CT whose scl_slope overflows float32 is refused, counting the infinite voxels', async () => {
    const slope = 2 ** 120;
    const infinite = phantom.image.filter((v) => !Number.isFinite(Math.fround(v * slope))).length;
    expect(infinite).toBeGreaterThan(0);
    // Uncompressed: only the header (int16 with a slope) says the voxels must be read.
    const c = await caseFolder('slope', { sclSlope: slope, imageName: 'volume-0.nii' });
    await refusedEverywhere(
      c,
      'image',
      `${infinite} infinite voxels after scaling (scl_slope ${slope}, scl_inter 0)`,
      CUBE_FLAGS,
    );
  });

  it('the improved preset makes no NaN from valid input, extreme finite values included', async () => {
    const image = Float32Array.from(phantom.image);
    image[0] = 3e38;
    image[1] = -3e38;
    image[2] = 1e-45;
    const c = await caseFolder('extreme', { image });
    expect((await validateDataset(c.dir)).ok).toBe(true);
    const cube = await preprocessCase(c, { preset: 'improved', targetSpacing: [4, 4, 4], cubeSize: 16 });
    expect(cube.image.every(Number.isFinite)).toBe(true);
    const constant = await caseFolder('constant', { image: new Int16Array(phantom.image.length).fill(40) });
    const flat = await preprocessCase(constant, {
      preset: 'improved',
      targetSpacing: [4, 4, 4],
      cubeSize: 16,
    });
    expect(flat.image.every((v) => v === 0)).toBe(true);
  });
});

describe('geometry and size', () => {
  it('a 2.5 mm shift between the volume and its mask is refused', async () => {
    const t = phantom.transform;
    const shifted = {
      ...t,
      sform: t.sform.map((r, i) => (i === 0 ? [r[0]!, r[1]!, r[2]!, r[3]! + 2.5] : r)),
    };
    const c = await caseFolder('shifted', { labelTransform: shifted });
    await refusedEverywhere(
      c,
      'label',
      'geometry differs from volume-0.nii.gz: affines differ by up to 2.50 mm (tolerance 0.001)',
      CUBE_FLAGS,
    );
  });

  it('a 64×64×1 volume is refused by validate, naming the minimum for the configured preprocessing', async () => {
    const plane = 64 * 64;
    const label = new Uint8Array(plane).map((_, i) => (i % 64 > 20 && i % 64 < 40 && i > 1300 ? 1 : 0));
    const c = await caseFolder('one-slice', {
      shape: [64, 64, 1],
      image: new Int16Array(plane).fill(60),
      label,
    });
    const seed = onlyProblem(await validateDataset(c.dir));
    expect(seed).toEqual({
      file: c.image,
      caseId: 0,
      reason:
        'shape 64×64×1 is too small for the seed preprocessing (downscale 2, 512 slices): need at least 2×2×3 voxels (a thinner volume loses its labels in the 2× block mean)',
    });
    const improved = onlyProblem(await validateDataset(c.dir, { preprocessing: { preset: 'improved' } }));
    expect(improved.reason).toBe(
      'shape 64×64×1 is too small for the improved preprocessing: need at least 2×2×2 voxels (a single slice is not a volume)',
    );
    const cli = await lits('validate', c.dir);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(`${c.image}: ${seed.reason}`);
    await expect(preprocessCase(c)).rejects.toThrow(`${c.image}: ${seed.reason}`);
  });

  it('minimumVolumeShape: an all-liver volume that large keeps its liver in the seed preset; at 2× one voxel less loses it', () => {
    const liverKept = (shape: [number, number, number], config: SeedPresetConfig): boolean => {
      const n = shape[0] * shape[1] * shape[2];
      try {
        seedPresetCube(
          { data: new Int16Array(n), shape },
          { data: new Uint8Array(n).fill(1), shape },
          phantom.affine,
          config,
        );
        return true;
      } catch (error) {
        expect((error as Error).message).toMatch(/no voxel has label ≥ 1 after downscaling/);
        return false;
      }
    };
    for (const [downscale, targetSlices] of [
      [2, 512],
      [2, 17],
      [3, 64],
      [4, 512],
      [4, 33],
    ] as const) {
      const config = resolvePreprocessConfig({ preset: 'seed', downscale, targetSlices, cubeSize: 8 });
      if (config.preset !== 'seed') throw new Error('seed config expected');
      const [mx, my, mz] = minimumVolumeShape(config);
      expect([mx, my]).toEqual([downscale, downscale]);
      for (let nz = mz; nz < mz + 3 * downscale; nz++)
        expect(liverKept([mx, my, nz], config), `${downscale}×, ${targetSlices} slices, z = ${nz}`).toBe(
          true,
        );
      // A block half made of padding has mean 0.5, which np.round takes to 0: the bound is exact at 2×.
      if (downscale === 2) {
        expect(liverKept([mx, my, mz - 1], config)).toBe(false);
        expect(liverKept([mx - 1, my, mz], config)).toBe(false);
      }
    }
    expect(minimumVolumeShape(resolvePreprocessConfig({ preset: 'seed', downscale: 1 }))).toEqual([2, 2, 2]);
    expect(minimumVolumeShape(resolvePreprocessConfig({ preset: 'improved' }))).toEqual([2, 2, 2]);
  });
});

describe('lits-data preprocess on a whole folder', () => {
  it('a segmentation without a volume exits 1 naming the file (it printed "0 cubes" and exited 0)', async () => {
    const c = await caseFolder('mask-only');
    rmSync(c.image);
    const run = await lits('preprocess', c.dir, '--cache', join(c.dir, 'cache'), ...CUBE_FLAGS);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `${c.label}: mask without an image (expected volume-0.nii or volume-0.nii.gz)`,
    );
    expect(run.stdout).toBe('');
    const skipping = await lits('preprocess', c.dir, '--cache', join(c.dir, 'cache'), '--skip-invalid');
    expect(skipping.code).toBe(1);
    expect(skipping.stderr).toMatch(/no valid case left/);
  });

  it('refuses a set with one invalid case, and with --skip-invalid preprocesses the rest, naming what it skipped', async () => {
    const c = await caseFolder('mixed');
    const bad = join(c.dir, 'segmentation-1.nii.gz');
    await writeNifti(join(c.dir, 'volume-1.nii.gz'), { ...phantom, data: phantom.image });
    await writeNifti(bad, { ...phantom, data: relabel({ 1: 9 }) });
    const cache = join(c.dir, 'cache');
    const refused = await lits('preprocess', c.dir, '--cache', cache, ...CUBE_FLAGS, '--json');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `lits-data: ${c.dir}: 1 problem (nothing preprocessed; fix them, or --skip-invalid preprocesses the 1 valid case)`,
    );
    expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, problems: [{ file: bad, caseId: 1 }] });
    expect(cubeFiles(cache)).toEqual([]);

    const skipped = await lits('preprocess', c.dir, '--cache', cache, ...CUBE_FLAGS, '--skip-invalid');
    expect(skipped.code).toBe(0);
    expect(skipped.stderr).toMatch(new RegExp(`warning: ${bad}: labels must be .* \\(case 1 skipped\\)`));
    expect(skipped.stdout).toMatch(
      /^1 cubes in .* \(1 new, 0 cached\); 1 problem \(listed above\), 1 case skipped\n$/,
    );
    expect(cubeFiles(cache)).toHaveLength(1);
  });

  it('preprocessDataset called directly never caches a cube of an invalid case', async () => {
    const c = await caseFolder('direct', { label: relabel({ 1: 5 }) });
    const cacheDir = join(c.dir, 'cache');
    await expect(preprocessDataset([c], { cacheDir, config: CONFIG })).rejects.toThrow(
      `${c.label}: labels must be 0, 1 or 2`,
    );
    expect(cubeFiles(cacheDir)).toEqual([]);
    const manifest = await preprocessDataset([c], {
      cacheDir,
      config: CONFIG,
      labelMap: parseLabelMap('5:1'),
    });
    expect(manifest.labelMap).toBe('5:1');
    expect(cubeFiles(cacheDir)).toHaveLength(1);
  });
});
