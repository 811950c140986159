// `lits train`'s data preparation (and the REST API's, which runs the same prepareData) refuses exactly the sets
// `lits data validate` refuses, with the same per-file reasons, and takes the spec's label map. No Redis: prepareData
// only reads a folder and writes the cube cache. It runs in a worker thread: its errors arrive as their classes, its
// progress in order, its cubes are those of the same calls on one thread, and an abort stops it.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generatePhantomDataset,
  generatePhantomVolumes,
  loadCube,
  LitsDataError,
  validateDataset,
  verifyCubeFile,
  writeNifti,
  type NiftiData,
  type PreprocessProgress,
} from '@lits-ddp/lits-data';
import { resolveSpec, type ExperimentSpecInput, type ResolvedSpec } from '@lits-ddp/protocol';
import {
  DatasetInvalidError,
  prepareData,
  preprocessConfigOf,
  labelMapOf,
} from '../src/orchestration/prepare-data.js';
import { prepareDataOnThisThread } from '../src/orchestration/data-preparation.js';

const SIZE: [number, number, number] = [24, 24, 12];
const SEED = 11;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lits-prepare-data-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function spec(dir: string, input: ExperimentSpecInput = {}): ResolvedSpec {
  const r = resolveSpec({
    'dataset-path': dir,
    gpus: 1,
    'cube-size': 16,
    'preprocess-slices': 16,
    'test-percent': 0.25,
    ...input,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

/** Three valid phantom cases (0–2) and case 3 as `edit` makes it. */
async function folder(
  name: string,
  edit: { image?: NiftiData; label?: NiftiData; shape?: number[]; shift?: number; noImage?: boolean },
): Promise<{ dir: string; image: string; label: string }> {
  const dir = join(root, name);
  await generatePhantomDataset({ outDir: dir, cases: 3, size: SIZE, seed: SEED });
  const v = generatePhantomVolumes(SEED, 3, { size: SIZE });
  const image = join(dir, 'volume-3.nii.gz');
  const label = join(dir, 'segmentation-3.nii.gz');
  const shape = edit.shape ?? v.shape;
  const t = v.transform;
  const shifted = {
    ...t,
    sform: t.sform.map((r, i) => (i === 0 ? [r[0]!, r[1]!, r[2]!, r[3]! + (edit.shift ?? 0)] : r)),
  };
  if (!edit.noImage) await writeNifti(image, { shape, transform: t, data: edit.image ?? v.image });
  await writeNifti(label, { shape, transform: shifted, data: edit.label ?? v.label });
  return { dir, image, label };
}

function cubesIn(cache: string): string[] {
  try {
    return readdirSync(join(cache, 'cubes'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.cube'),
    );
  } catch {
    return [];
  }
}

async function refusal(s: ResolvedSpec, cacheDir: string): Promise<DatasetInvalidError> {
  const error = await prepareData(s, { datasetPath: s['dataset-path'], cacheDir, dataSeed: 0 }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatasetInvalidError);
  return error as DatasetInvalidError;
}

describe('prepareData', () => {
  it('prepares a valid set as before: validated, split, every case a cube', async () => {
    const dir = join(root, 'valid');
    await generatePhantomDataset({ outDir: dir, cases: 4, size: SIZE, seed: SEED });
    const cacheDir = join(root, 'valid-cache');
    const s = spec(dir);
    const prepared = await prepareData(s, { datasetPath: dir, cacheDir, dataSeed: 0 });
    expect(prepared).toMatchObject({ layout: 'lits', split: 'seeded' });
    expect(prepared.trainCases.length + prepared.testCases.length).toBe(4);
    expect(cubesIn(cacheDir)).toHaveLength(4);
    expect(preprocessConfigOf(s)).toEqual({ preset: 'seed', targetSlices: 16, downscale: 2, cubeSize: 16 });
    expect(labelMapOf(s)).toBeNull();
  });

  const plane = SIZE[0] * SIZE[1];
  const phantom3 = () => generatePhantomVolumes(SEED, 3, { size: SIZE });
  const defects: Array<{
    name: string;
    edit: () => Parameters<typeof folder>[1];
    file: 'image' | 'label';
    reason: RegExp;
    input?: ExperimentSpecInput;
  }> = [
    {
      name: 'liver stored as 5',
      edit: () => ({ label: phantom3().label.map((v) => (v === 1 ? 5 : v)) }),
      file: 'label',
      reason: /^labels must be 0, 1 or 2, or be named by a label map .*; found 5 \(\d+ voxels\)$/,
    },
    {
      name: 'labels 3, 7 and 0.5',
      edit: () => ({
        label: Float32Array.from(phantom3().label, (v, i) => (i === 0 ? 3 : i === 1 ? 7 : i < 4 ? 0.5 : v)),
      }),
      file: 'label',
      reason: /found 0\.5 \(2 voxels\), 3 \(1 voxel\), 7 \(1 voxel\)$/,
    },
    {
      name: 'NaN in the CT (improved preset)',
      edit: () => ({ image: Float32Array.from(phantom3().image, (v, i) => (i % 100 === 5 ? NaN : v)) }),
      file: 'image',
      reason: /^\d+ NaN voxels$/,
      input: { preprocessing: 'improved' },
    },
    {
      name: 'a 2.5 mm shift of the mask',
      edit: () => ({ shift: 2.5 }),
      file: 'label',
      reason: /^geometry differs from volume-3\.nii\.gz: affines differ by up to 2\.50 mm/,
    },
    {
      name: 'a segmentation without a volume',
      edit: () => ({ noImage: true }),
      file: 'label',
      reason: /^mask without an image \(expected volume-3\.nii or volume-3\.nii\.gz\)$/,
    },
    {
      name: 'a 24×24×1 volume',
      edit: () => ({
        shape: [SIZE[0], SIZE[1], 1],
        image: new Int16Array(plane).fill(60),
        label: new Uint8Array(plane).fill(1),
      }),
      file: 'image',
      reason:
        /^shape 24×24×1 is too small for the seed preprocessing \(downscale 2, 512 slices\): need at least 2×2×3 voxels/,
      input: { 'preprocess-slices': 512 },
    },
  ];

  for (const defect of defects)
    it(`refuses ${defect.name} with validate's reason, and caches nothing`, async () => {
      const slug = defect.name.replace(/\W+/g, '-');
      const c = await folder(slug, defect.edit());
      const s = spec(c.dir, defect.input);
      const cacheDir = join(root, `${slug}-cache`);
      const error = await refusal(s, cacheDir);
      const validated = await validateDataset(c.dir, {
        labelMap: labelMapOf(s),
        preprocessing: preprocessConfigOf(s),
      });
      expect(error.problems).toEqual(validated.problems);
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]!.file).toBe(c[defect.file]);
      expect(error.problems[0]!.reason).toMatch(defect.reason);
      expect(error.message).toContain(`${c[defect.file]}: ${error.problems[0]!.reason}`);
      expect(cubesIn(cacheDir)).toEqual([]);
    });

  it("takes the spec's label-map: a set whose liver is 5 (and spleen 1) trains with label-map 5:1,*:0", async () => {
    const dir = join(root, 'liver-5-set');
    const cases = await generatePhantomDataset({ outDir: dir, cases: 4, size: SIZE, seed: SEED });
    for (const c of cases) {
      const v = generatePhantomVolumes(SEED, c.id, { size: SIZE });
      const organs = v.label.map((x, i) => (x > 0 ? 5 : i % 53 === 0 ? 1 : 0));
      await writeNifti(c.label, { shape: v.shape, transform: v.transform, data: organs });
    }
    const cacheDir = join(root, 'liver-5-cache');
    const error = await refusal(spec(dir), cacheDir);
    expect(error.problems.map((p) => p.reason)).toEqual(
      cases.map(() => expect.stringMatching(/^labels must be 0, 1 or 2, .*; found 5 \(\d+ voxels\)$/)),
    );
    const s = spec(dir, { 'label-map': '5:1,*:0' });
    expect(labelMapOf(s)?.text).toBe('5:1,*:0');
    const prepared = await prepareData(s, { datasetPath: dir, cacheDir, dataSeed: 0 });
    const refs = [...prepared.trainCases, ...prepared.testCases];
    expect(refs).toHaveLength(4);
    for (const ref of refs) {
      const label = loadCube(join(cacheDir, ref.cacheFile)).label;
      expect(label.includes(1), `case ${ref.caseId}`).toBe(true);
      expect(label.includes(2), `case ${ref.caseId}`).toBe(false);
    }
  });

  it('names the cache folder when cache-path is a file', async () => {
    const dir = join(root, 'cache-file-data');
    await generatePhantomDataset({ outDir: dir, cases: 2, size: SIZE, seed: SEED });
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const error = await prepareData(spec(dir), { datasetPath: dir, cacheDir: file, dataSeed: 0 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LitsDataError);
    expect(error).toMatchObject({
      file,
      reason: 'the cache folder is a file, not a folder (preprocess writes cubes there)',
      message: `${file}: the cache folder is a file, not a folder (preprocess writes cubes there)`,
    });
  });
});

describe('prepareData in its worker thread', () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(root, 'thread-set');
    await generatePhantomDataset({ outDir: dir, cases: 5, size: SIZE, seed: SEED });
  });

  it('gives the split and the cube bytes that the same calls give on this thread, with progress in order', async () => {
    const validated: Array<[number, number]> = [];
    const preprocessed: PreprocessProgress[] = [];
    const threadCache = join(root, 'thread-cache');
    const prepared = await prepareData(spec(dir), {
      datasetPath: dir,
      cacheDir: threadCache,
      dataSeed: 7,
      onValidate: (done, total) => validated.push([done, total]),
      onPreprocess: (p) => preprocessed.push(p),
    });
    const hereCache = join(root, 'here-cache');
    const here = await prepareDataOnThisThread(spec(dir), {
      datasetPath: dir,
      cacheDir: hereCache,
      dataSeed: 7,
    });
    expect(prepared).toEqual(here);
    expect(validated).toEqual([1, 2, 3, 4, 5].map((d) => [d, 5]));
    expect(preprocessed.map((p) => [p.done, p.total, p.cached])).toEqual(
      [1, 2, 3, 4, 5].map((d) => [d, 5, false]),
    );
    for (const ref of [...prepared.trainCases, ...prepared.testCases])
      expect(
        readFileSync(join(threadCache, ref.cacheFile)).equals(readFileSync(join(hereCache, ref.cacheFile))),
      ).toBe(true);
  });

  it("keeps working while the caller's thread is busy: its cubes appear while this thread never yields", async () => {
    const cacheDir = join(root, 'busy-cache');
    let started!: () => void;
    const validating = new Promise<void>((r) => (started = r));
    const preparing = prepareData(spec(dir), {
      datasetPath: dir,
      cacheDir,
      dataSeed: 0,
      onValidate: () => started(),
    });
    await validating;
    // From here on this thread does not return to its event loop until the first cube is on disk: were the work on
    // this thread, it could not progress and the deadline would end the wait.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + 60_000;
    while (cubesIn(cacheDir).length === 0 && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
    expect(cubesIn(cacheDir).length).toBeGreaterThan(0);
    await preparing;
    expect(cubesIn(cacheDir)).toHaveLength(5);
  });

  it('stops when the signal aborts, rejecting with its reason; the cache stays whole and is reused', async () => {
    const cacheDir = join(root, 'abort-cache');
    const controller = new AbortController();
    const reason = new Error('run cancelled');
    const aborted = await prepareData(spec(dir), {
      datasetPath: dir,
      cacheDir,
      dataSeed: 0,
      signal: controller.signal,
      onValidate: () => controller.abort(reason),
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(aborted).toBe(reason);
    for (const cube of cubesIn(cacheDir)) verifyCubeFile(join(cacheDir, 'cubes', cube));
    const again = await prepareData(spec(dir), { datasetPath: dir, cacheDir, dataSeed: 0 });
    expect(again.trainCases.length + again.testCases.length).toBe(5);
    expect(cubesIn(cacheDir)).toHaveLength(5);
    const early = new AbortController();
    early.abort(reason);
    await expect(
      prepareData(spec(dir), { datasetPath: dir, cacheDir, dataSeed: 0, signal: early.signal }),
    ).rejects.toBe(reason);
  });

  it('rejects with the error of a progress callback that throws, and stops', async () => {
    const failure = new Error('progress sink failed');
    await expect(
      prepareData(spec(dir), {
        datasetPath: dir,
        cacheDir: join(root, 'callback-cache'),
        dataSeed: 0,
        onPreprocess: () => {
          throw failure;
        },
      }),
    ).rejects.toBe(failure);
  });
});
