import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import Type from 'typebox';
import { errorMessage } from '@lits-ddp/errors';
import { checkJson, JsonDecodeError } from '@lits-ddp/protocol';
import { fileSystemError, LitsDataError } from '../errors.js';
import type { CaseFiles } from '../preprocess/case.js';

export type DatasetLayout = 'lits' | 'msd';

export interface DatasetProblem {
  file: string;
  caseId: number | null;
  reason: string;
}

export interface Dataset {
  root: string;
  layout: DatasetLayout;
  /** Complete image/label pairs, by id. */
  cases: CaseFiles[];
  /** Files that could not be paired (a volume without its mask, two files for one case, …). */
  problems: DatasetProblem[];
}

const LITS_NAME = /^(volume|segmentation)-(\d+)\.nii(\.gz)?$/i;
const NO_CASES =
  'no cases found: expected volume-N.nii[.gz] with segmentation-N.nii[.gz] (LiTS), or imagesTr/ and labelsTr/ with dataset.json (MSD Task03)';

async function listDir(dir: string): Promise<Array<{ name: string; isDir: boolean }>> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => !e.name.startsWith('.'))
      .map((e) => ({ name: e.name, isDir: e.isDirectory() }))
      .sort((a, b) => a.name.localeCompare(b.name));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LitsDataError(dir, 'folder not found', { cause: error });
    if (code === 'ENOTDIR') throw new LitsDataError(dir, 'is a file, not a folder', { cause: error });
    throw new LitsDataError(dir, errorMessage(error), { cause: error });
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    // Asked only of imagesTr/labelsTr inside a folder just listed: anything but a folder there means "not MSD by
    // name", and the LiTS discovery that runs next lists (and reports) what it cannot read.
    return false;
  }
}

function pairUp(
  images: Map<number, string[]>,
  labels: Map<number, string[]>,
  expectLabel: (id: number) => string,
  expectImage: (id: number) => string,
): { cases: CaseFiles[]; problems: DatasetProblem[] } {
  const cases: CaseFiles[] = [];
  const problems: DatasetProblem[] = [];
  const ids = [...new Set([...images.keys(), ...labels.keys()])].sort((a, b) => a - b);
  for (const id of ids) {
    const image = images.get(id) ?? [];
    const label = labels.get(id) ?? [];
    if (image.length > 1)
      problems.push({
        file: image[1]!,
        caseId: id,
        reason: `second image for case ${id} (also ${basename(image[0]!)})`,
      });
    if (label.length > 1)
      problems.push({
        file: label[1]!,
        caseId: id,
        reason: `second mask for case ${id} (also ${basename(label[0]!)})`,
      });
    if (image.length === 0)
      problems.push({
        file: label[0]!,
        caseId: id,
        reason: `mask without an image (expected ${expectImage(id)})`,
      });
    else if (label.length === 0)
      problems.push({ file: image[0]!, caseId: id, reason: `no mask (expected ${expectLabel(id)})` });
    else cases.push({ id, image: image[0]!, label: label[0]! });
  }
  return { cases, problems };
}

function add(map: Map<number, string[]>, id: number, file: string): void {
  const list = map.get(id) ?? [];
  list.push(file);
  map.set(id, list);
}

/** LiTS: volume-N / segmentation-N in the folder or one level down ("Training Batch 1", "Training Batch 2"). */
async function discoverLits(root: string): Promise<Dataset | null> {
  const images = new Map<number, string[]>();
  const labels = new Map<number, string[]>();
  const scan = async (dir: string, depth: number): Promise<void> => {
    for (const entry of await listDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDir) {
        if (depth < 1) await scan(path, depth + 1);
        continue;
      }
      const m = LITS_NAME.exec(entry.name);
      if (m) add(m[1]!.toLowerCase() === 'volume' ? images : labels, Number(m[2]), path);
    }
  };
  await scan(root, 0);
  if (images.size === 0 && labels.size === 0) return null;
  const paired = pairUp(
    images,
    labels,
    (id) => `segmentation-${id}.nii or segmentation-${id}.nii.gz`,
    (id) => `volume-${id}.nii or volume-${id}.nii.gz`,
  );
  return { root, layout: 'lits', ...paired };
}

/** The part of MSD's dataset.json that discovery reads; other fields (name, labels, test, …) are ignored. */
const MsdDatasetJson = Type.Object({
  training: Type.Array(Type.Object({ image: Type.String(), label: Type.String() })),
});

/** dataset.json's training pairs, or null when there is no dataset.json. */
async function readMsdTraining(jsonFile: string): Promise<Array<{ image: string; label: string }> | null> {
  let text: string;
  try {
    text = await readFile(jsonFile, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw fileSystemError(jsonFile, error, 'reading the MSD data set description');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LitsDataError(jsonFile, `invalid JSON (${errorMessage(error)})`, { cause: error });
  }
  try {
    return checkJson(MsdDatasetJson, value, jsonFile).training;
  } catch (error) {
    if (!(error instanceof JsonDecodeError)) throw error;
    // The schema names the first bad field; the start of the reason says what dataset.json should hold.
    throw new LitsDataError(jsonFile, `"training" must be a list of {image, label} (${error.problem})`, {
      cause: error,
    });
  }
}

function caseIdOf(file: string): number | null {
  const m = /(\d+)\.nii(\.gz)?$/i.exec(basename(file));
  return m ? Number(m[1]) : null;
}

/** MSD Task03: dataset.json's `training` list, or imagesTr/labelsTr by name when there is no dataset.json. */
async function discoverMsd(root: string): Promise<Dataset | null> {
  const imagesTr = join(root, 'imagesTr');
  const labelsTr = join(root, 'labelsTr');
  const jsonFile = join(root, 'dataset.json');
  const images = new Map<number, string[]>();
  const labels = new Map<number, string[]>();
  const training = await readMsdTraining(jsonFile);
  if (training !== null) {
    training.forEach((pair, i) => {
      const id = caseIdOf(pair.image);
      if (id === null)
        throw new LitsDataError(jsonFile, `training[${i}].image "${pair.image}" has no case number`);
      add(images, id, resolve(root, pair.image));
      add(labels, id, resolve(root, pair.label));
    });
  } else if ((await isDir(imagesTr)) && (await isDir(labelsTr))) {
    for (const [dir, map] of [
      [imagesTr, images],
      [labelsTr, labels],
    ] as const) {
      for (const entry of await listDir(dir)) {
        const id = entry.isDir ? null : caseIdOf(entry.name);
        if (id !== null) add(map, id, join(dir, entry.name));
      }
    }
  } else return null;
  if (images.size === 0 && labels.size === 0) return null;
  const paired = pairUp(
    images,
    labels,
    (id) => `labelsTr/liver_${id}.nii.gz`,
    (id) => `imagesTr/liver_${id}.nii.gz`,
  );
  return { root, layout: 'msd', ...paired };
}

/**
 * Finds the cases of a LiTS folder or an MSD Task03_Liver folder (also when `dir` holds the Task03 folder). Throws
 * when the folder holds no case files at all; unpaired files are listed in `problems`.
 */
export async function discoverDataset(dir: string): Promise<Dataset> {
  const root = resolve(dir);
  const entries = await listDir(root);
  const found = (await discoverMsd(root)) ?? (await discoverLits(root));
  if (found) return found;
  for (const entry of entries) {
    if (!entry.isDir) continue;
    const nested = await discoverMsd(join(root, entry.name));
    if (nested) return nested;
  }
  throw new LitsDataError(dir, NO_CASES);
}
