import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { predictVolume } from '@lits-ddp/inference';
import { readNifti } from '@lits-ddp/lits-data';
import { testCasesOf } from './repro-record.js';

export interface DemoOverlay {
  caseId: number;
  /** Tumour voxels of the case's ground truth. */
  tumourVoxels: number;
  mask: string;
  png: string;
}

async function tumourVoxels(file: string): Promise<number> {
  const { data } = await readNifti(file, { native: true });
  let n = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 2) n++;
  return n;
}

/**
 * Segments the held-out case with the most tumour with the run's model (as `lits predict` does) and draws its
 * ground truth above the prediction, on slices through the tumour. Null when the run has no test case.
 */
export async function demoOverlay(runDir: string, dataDir: string): Promise<DemoOverlay | null> {
  const ids = await testCasesOf(runDir);
  const labelOf = (id: number) => join(dataDir, `segmentation-${id}.nii.gz`);
  let best: { caseId: number; tumourVoxels: number } | null = null;
  for (const caseId of ids.filter((id) => existsSync(labelOf(id)))) {
    const n = await tumourVoxels(labelOf(caseId));
    if (best === null || n > best.tumourVoxels) best = { caseId, tumourVoxels: n };
  }
  if (best === null) return null;
  const reference = await readNifti(labelOf(best.caseId), { native: true });
  const out = join(runDir, 'demo');
  const mask = join(out, `segmentation-${best.caseId}.nii.gz`);
  const png = join(out, `overlay-${best.caseId}.png`);
  await predictVolume({
    model: runDir,
    input: join(dataDir, `volume-${best.caseId}.nii.gz`),
    output: mask,
    overlay: png,
    overlayOptions: { reference: reference.data as Uint8Array },
  });
  return { ...best, mask, png };
}
