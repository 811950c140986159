// Batch mode: every CT volume of a folder, one at a time with one loaded model.
import { readdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { NoVolumesError } from './errors.js';
import { loadPredictor, type Predictor } from './model-source.js';
import { checkOutputFolder } from './output-path.js';
import { predictVolume, type PredictVolumeOptions, type PredictVolumeResult } from './predict-volume.js';

const NIFTI = /\.nii(\.gz)?$/i;
/** Masks that may sit beside the volumes (LiTS segmentation-N, MSD-style label files): never inputs. */
const MASK_NAME = /(^|[-_])(segmentation|seg|label|labels|mask)([-_.]|$)/i;

/** The CT volumes of a folder (not recursive): .nii / .nii.gz files that are not masks or hidden files. */
export async function listVolumes(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter(
      (e) =>
        e.isFile() &&
        NIFTI.test(e.name) &&
        !e.name.startsWith('.') &&
        !MASK_NAME.test(e.name.replace(NIFTI, '')),
    )
    .map((e) => join(dir, e.name))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

/**
 * Output name for an input volume: LiTS names map `volume` → `segmentation` (`volume-3.nii` → `segmentation-3.nii`,
 * `test-volume-3.nii` → `test-segmentation-3.nii`, as the challenge expects); any other name is kept (MSD:
 * `liver_132.nii.gz`). The extension is kept.
 */
export function maskNameFor(input: string): string {
  const name = basename(input);
  return /volume/i.test(name) ? name.replace(/volume/i, 'segmentation') : name;
}

export interface PredictFolderOptions extends Omit<
  PredictVolumeOptions,
  'input' | 'output' | 'overlay' | 'model'
> {
  model: Predictor | string;
  inputDir: string;
  outputDir: string;
  /** Folder for one `<mask name>.png` per case. */
  overlayDir?: string;
  onCase?: (index: number, total: number, input: string) => void;
}

export interface PredictFolderResult {
  results: PredictVolumeResult[];
  failures: Array<{ input: string; error: string }>;
}

/** Predicts every volume; a failing case is recorded and the others go on. */
export async function predictFolder(options: PredictFolderOptions): Promise<PredictFolderResult> {
  const inputs = await listVolumes(options.inputDir);
  if (inputs.length === 0) throw new NoVolumesError(options.inputDir);
  // No case could be written: fail once, before loading the model, rather than once per case.
  await checkOutputFolder(options.outputDir, 'the masks');
  if (options.overlayDir) await checkOutputFolder(options.overlayDir, 'the overlays');
  const predictor =
    typeof options.model === 'string'
      ? await loadPredictor({ model: options.model, ...(options.engine ? { engine: options.engine } : {}) })
      : options.model;
  const results: PredictVolumeResult[] = [];
  const failures: PredictFolderResult['failures'] = [];
  for (const [i, input] of inputs.entries()) {
    options.onCase?.(i, inputs.length, input);
    const name = maskNameFor(input);
    const output = join(options.outputDir, name);
    if (resolve(output) === resolve(input)) {
      failures.push({
        input,
        error: `${input}: the mask would overwrite the volume; choose another --out folder`,
      });
      continue;
    }
    try {
      results.push(
        await predictVolume({
          ...options,
          model: predictor,
          input,
          output,
          ...(options.overlayDir
            ? { overlay: join(options.overlayDir, `${name.replace(NIFTI, '')}.png`) }
            : {}),
        }),
      );
    } catch (error) {
      // Recorded, not dropped: the caller reports every failed case with its reason.
      failures.push({ input, error: errorMessage(error) });
    }
  }
  return { results, failures };
}
