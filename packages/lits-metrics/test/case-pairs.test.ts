import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseKeyOf, maskFiles, pairCases } from '../src/index.js';

let dir: string;
const touch = async (...parts: string[]) => {
  await mkdir(join(dir, ...parts.slice(0, -1)), { recursive: true });
  await writeFile(join(dir, ...parts), '');
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lits-pairs-'));
  // LiTS as downloaded: two batch folders with volumes and masks.
  await touch('lits', 'Training Batch 1', 'volume-0.nii');
  await touch('lits', 'Training Batch 1', 'segmentation-0.nii');
  await touch('lits', 'Training Batch 2', 'volume-28.nii');
  await touch('lits', 'Training Batch 2', 'segmentation-28.nii');
  await touch('lits', 'Training Batch 2', '._segmentation-28.nii');
  // MSD Task03: labelsTr is used, imagesTr ignored.
  await touch('msd', 'imagesTr', 'liver_3.nii.gz');
  await touch('msd', 'labelsTr', 'liver_3.nii.gz');
  await touch('msd', 'labelsTr', 'liver_10.nii.gz');
  await touch('msd', 'dataset.json');
  await touch('msd', 'dataset-only', 'notes.txt');
  await touch('msd', 'dataset-only', 'volume-1.nii');
  await touch('pred', 'segmentation-0.nii.gz');
  await touch('pred', 'segmentation-28.nii.gz');
  await touch('pred', 'test-segmentation-99.nii');
  await touch('dup', 'segmentation-5.nii');
  await touch('dup', 'segmentation-005.nii.gz');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('pairing predictions with ground truth', () => {
  it('keys cases by the number at the end of the name', () => {
    expect(caseKeyOf('/x/segmentation-17.nii')).toBe('17');
    expect(caseKeyOf('test-segmentation-017.nii.gz')).toBe('17');
    expect(caseKeyOf('liver_131.nii.gz')).toBe('131');
    expect(caseKeyOf('mask.nii.gz')).toBe('mask');
  });

  it('finds LiTS masks in the batch sub-folders and MSD masks in labelsTr', async () => {
    expect([...(await maskFiles(join(dir, 'lits'))).entries()]).toEqual([
      ['0', join(dir, 'lits', 'Training Batch 1', 'segmentation-0.nii')],
      ['28', join(dir, 'lits', 'Training Batch 2', 'segmentation-28.nii')],
    ]);
    expect([...(await maskFiles(join(dir, 'msd'))).keys()].sort()).toEqual(['10', '3']);
  });

  it('pairs by case, lists extra predictions, and names duplicates', async () => {
    const { pairs, unmatchedPredictions } = await pairCases(join(dir, 'pred'), join(dir, 'lits'));
    expect(pairs).toEqual([
      {
        case: '0',
        pred: join(dir, 'pred', 'segmentation-0.nii.gz'),
        truth: join(dir, 'lits', 'Training Batch 1', 'segmentation-0.nii'),
      },
      {
        case: '28',
        pred: join(dir, 'pred', 'segmentation-28.nii.gz'),
        truth: join(dir, 'lits', 'Training Batch 2', 'segmentation-28.nii'),
      },
    ]);
    expect(unmatchedPredictions).toEqual([join(dir, 'pred', 'test-segmentation-99.nii')]);
    await expect(maskFiles(join(dir, 'dup'))).rejects.toThrow(
      `${join(dir, 'dup')}: two masks for case 5: ${join(dir, 'dup', 'segmentation-005.nii.gz')} and ${join(dir, 'dup', 'segmentation-5.nii')}`,
    );
    await expect(pairCases(join(dir, 'pred'), join(dir, 'nowhere'))).rejects.toThrow(
      `${join(dir, 'nowhere')}: not found`,
    );
    await expect(pairCases(join(dir, 'pred'), join(dir, 'msd', 'dataset-only'))).rejects.toThrow(
      /no ground-truth masks/,
    );
  });
});
