// Pairs predicted masks with ground-truth masks by case id, for `lits evaluate --pred DIR --truth DIR`.
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { EvaluationError } from './errors.js';

export interface CasePair {
  /** Case key: the number at the end of the file name (segmentation-17 → "17"), else the name without extension. */
  case: string;
  pred: string;
  truth: string;
}

export interface CasePairing {
  pairs: CasePair[];
  /** Prediction files with no ground truth (not evaluated). */
  unmatchedPredictions: string[];
}

const NIFTI = /\.nii(\.gz)?$/i;
/** CT volumes that may sit beside the masks in a LiTS folder: never masks. */
const IMAGE_NAME = /^(test-)?volume[-_]/i;

export function caseKeyOf(file: string): string {
  const name = basename(file).replace(NIFTI, '');
  const digits = /(\d+)$/.exec(name);
  return digits ? String(Number(digits[1])) : name;
}

async function kind(path: string): Promise<'file' | 'dir'> {
  try {
    return (await stat(path)).isDirectory() ? 'dir' : 'file';
  } catch (error) {
    throw new EvaluationError(`${path}: not found`, [path], { cause: error });
  }
}

async function niftiFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && NIFTI.test(e.name) && !e.name.startsWith('.') && !IMAGE_NAME.test(e.name))
    .map((e) => join(dir, e.name));
}

/**
 * Mask files of a folder: `labelsTr/` when present (MSD), else the folder itself plus its sub-folders one level down
 * (LiTS "Training Batch 1/2"), skipping CT volumes (`volume-N`, `test-volume-N`) and hidden files.
 */
export async function maskFiles(dir: string): Promise<Map<string, string>> {
  const entries = await readdir(dir, { withFileTypes: true });
  const labelsTr = entries.find((e) => e.isDirectory() && e.name === 'labelsTr');
  const files = labelsTr
    ? await niftiFiles(join(dir, labelsTr.name))
    : [
        ...(await niftiFiles(dir)),
        ...(
          await Promise.all(
            entries
              .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
              .map((e) => niftiFiles(join(dir, e.name))),
          )
        ).flat(),
      ];
  const byCase = new Map<string, string>();
  for (const file of files.sort()) {
    const key = caseKeyOf(file);
    const other = byCase.get(key);
    if (other)
      throw new EvaluationError(`${dir}: two masks for case ${key}: ${other} and ${file}`, [other, file]);
    byCase.set(key, file);
  }
  return byCase;
}

/** Single files are one case; folders are paired by case key. Every ground-truth case needs a prediction. */
export async function pairCases(pred: string, truth: string): Promise<CasePairing> {
  const [predKind, truthKind] = await Promise.all([kind(pred), kind(truth)]);
  if (predKind !== truthKind)
    throw new EvaluationError(
      `--pred ${pred} is a ${predKind === 'dir' ? 'folder' : 'file'} but --truth ${truth} is a ${truthKind === 'dir' ? 'folder' : 'file'}; give two files or two folders`,
      [pred, truth],
    );
  if (predKind === 'file')
    return { pairs: [{ case: caseKeyOf(truth), pred, truth }], unmatchedPredictions: [] };
  const truths = await maskFiles(truth);
  if (truths.size === 0)
    throw new EvaluationError(
      `${truth}: no ground-truth masks (.nii or .nii.gz files other than volume-N) in this folder`,
      [truth],
    );
  const preds = await maskFiles(pred);
  const missing = [...truths.entries()].filter(([key]) => !preds.has(key));
  if (missing.length > 0) {
    const shown = missing.slice(0, 10).map(([key, file]) => `case ${key} (${basename(file)})`);
    const more = missing.length > 10 ? ` and ${missing.length - 10} more` : '';
    throw new EvaluationError(
      `${pred}: no prediction for ${shown.join(', ')}${more}; predictions are matched to ground truth by the number at the end of the file name`,
      [pred, ...missing.map(([, file]) => file)],
    );
  }
  const byNumber = (a: string, b: string) => {
    const na = Number(a);
    const nb = Number(b);
    return Number.isNaN(na) || Number.isNaN(nb) ? a.localeCompare(b) : na - nb;
  };
  const pairs = [...truths.keys()]
    .sort(byNumber)
    .map((key) => ({ case: key, pred: preds.get(key)!, truth: truths.get(key)! }));
  const unmatchedPredictions = [...preds.entries()].filter(([key]) => !truths.has(key)).map(([, f]) => f);
  return { pairs, unmatchedPredictions };
}
