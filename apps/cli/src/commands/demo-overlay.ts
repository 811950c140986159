import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { predictVolume } from '@lits-ddp/inference';
import { readNifti, type NiftiData } from '@lits-ddp/lits-data';
import { testCasesOf } from './repro-record.js';

export interface DemoOverlay {
  caseId: number;
  /** Tumour voxels of the case's ground truth. */
  tumourVoxels: number;
  mask: string;
  png: string;
}

function tumourVoxels(label: NiftiData): number {
  let n = 0;
  for (let i = 0; i < label.length; i++) if (label[i] === 2) n++;
  return n;
}

/**
 * Segments the held-out case with the most tumour with the run's model (as `lits predict` does) and draws its
 * ground truth above the prediction, on slices through the tumour. Null when the run has no test case.
 */
export async function demoOverlay(runDir: string, dataDir: string): Promise<DemoOverlay | null> {
  const ids = await testCasesOf(runDir);
  const labelOf = (id: number) => join(dataDir, `segmentation-${id}.nii.gz`);
  let best: { caseId: number; tumourVoxels: number; label: NiftiData } | null = null;
  for (const caseId of ids.filter((id) => existsSync(labelOf(id)))) {
    const { data } = await readNifti(labelOf(caseId), { native: true });
    const n = tumourVoxels(data);
    if (best === null || n > best.tumourVoxels) best = { caseId, tumourVoxels: n, label: data };
  }
  if (best === null) return null;
  const out = join(runDir, 'demo');
  const mask = join(out, `segmentation-${best.caseId}.nii.gz`);
  const png = join(out, `overlay-${best.caseId}.png`);
  await predictVolume({
    model: runDir,
    input: join(dataDir, `volume-${best.caseId}.nii.gz`),
    output: mask,
    overlay: png,
    overlayOptions: { reference: best.label as Uint8Array },
  });
  return { caseId: best.caseId, tumourVoxels: best.tumourVoxels, mask, png };
}
