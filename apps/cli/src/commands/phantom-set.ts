import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generatePhantomDataset, LITS_TEST_IDS, type Shape3 } from '@lits-ddp/lits-data';

/**
 * A phantom data set numbered like LiTS, so that `split: lits` applies: its test cases carry the seed's fixed LiTS
 * test ids, its training cases the lowest other ids. `lits demo` and `lits repro` train on one.
 */
export interface PhantomSet {
  seed: number;
  /** Voxels per case (x, y, z) over the phantoms' fixed 358.4 × 358.4 × 300 mm field of view. */
  size: Shape3;
  train: number;
  test: number;
}

/** The seed's LiTS test ids in ascending order: the first `n` are a set's test cases. */
const SORTED_TEST_IDS = [...LITS_TEST_IDS].sort((a, b) => a - b);

export function phantomSetIds(set: PhantomSet): { train: number[]; test: number[] } {
  if (set.test > SORTED_TEST_IDS.length)
    throw new RangeError(
      `a phantom set has at most ${SORTED_TEST_IDS.length} test cases (the seed's LiTS test ids)`,
    );
  const test = SORTED_TEST_IDS.slice(0, set.test);
  const train: number[] = [];
  for (let id = 0; train.length < set.train; id++) if (!LITS_TEST_IDS.includes(id)) train.push(id);
  return { train, test };
}

/** What a folder's `phantoms.json` records: the set, and the generator's lesion model version it was made with. */
const MANIFEST = 'phantoms.json';
const GENERATOR = 'lits-ddp phantoms 2 (LiTS-like lesions)';

/** A LiTS case file or the default cube cache: what a phantom folder holds besides its manifest. */
const GENERATED = /^(volume|segmentation)-\d+\.nii(\.gz)?$|^\.lits-cache$/;

/**
 * Makes `dir` hold exactly `set`: kept when its manifest says so, otherwise its cases and cube cache are removed
 * and the set generated again, so that a folder from an older phantom model or another size is never trained on by
 * mistake. Other files in `dir` are left alone.
 */
export async function ensurePhantomSet(
  dir: string,
  set: PhantomSet,
  log: (line: string) => void,
): Promise<void> {
  const wanted = JSON.stringify({ generator: GENERATOR, ...set });
  const present = await readFile(join(dir, MANIFEST), 'utf8').catch(() => null);
  if (present !== null && present.trim() === wanted) return;
  const { train, test } = phantomSetIds(set);
  log(`generating ${train.length + test.length} phantom CT cases of ${set.size.join('×')} in ${dir}`);
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const name of entries.filter((n) => GENERATED.test(n)))
    await rm(join(dir, name), { recursive: true, force: true });
  for (const id of [...train, ...test])
    await generatePhantomDataset({ outDir: dir, cases: 1, firstId: id, size: set.size, seed: set.seed });
  await writeFile(join(dir, MANIFEST), `${wanted}\n`);
}
