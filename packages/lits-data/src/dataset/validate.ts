import { errorMessage } from '@lits-ddp/errors';
import { LitsDataError } from '../errors.js';
import { readNifti, readNiftiHeader, scalingOf } from '../nifti/read.js';
import type { NiftiHeaderInfo } from '../nifti/header.js';
import type { CaseFiles } from '../preprocess/case.js';
import {
  resolvePreprocessConfig,
  type PreprocessConfig,
  type PreprocessConfigInput,
} from '../preprocess/config.js';
import { shape3 } from '../preprocess/grid.js';
import { discoverDataset, type DatasetLayout, type DatasetProblem } from './discover.js';
import { countLabelClasses, type LabelMap } from './label-map.js';
import {
  DEFAULT_GEOMETRY_TOLERANCE,
  dimensionProblem,
  geometryProblem,
  imageValueProblem,
  labelProblem,
  mayHoldNonFinite,
  sizeProblem,
} from './rules.js';

export interface ValidationReport {
  root: string;
  layout: DatasetLayout | null;
  /** Complete image/label pairs found. */
  caseCount: number;
  /** Pairs without any problem. */
  validCases: number[];
  /** The files of those pairs, by id: what preprocessing may use. */
  validCaseFiles: CaseFiles[];
  ok: boolean;
  problems: DatasetProblem[];
}

export interface ValidateOptions {
  /** Largest allowed difference between image and mask affine entries, in mm (default 1e-3). */
  geometryTolerance?: number;
  /** What the mask values mean (default: none, so masks must hold 0, 1 and 2 only). */
  labelMap?: LabelMap | null;
  /**
   * The preprocessing the cases are for; it sets the smallest usable volume (`minimumVolumeShape`). Default: the seed
   * preset's defaults, which `lits train` and `lits data preprocess` also default to.
   */
  preprocessing?: PreprocessConfig | PreprocessConfigInput;
  onProgress?: (done: number, total: number, caseId: number) => void;
}

function problemOf(error: unknown, caseId: number, fallbackFile: string): DatasetProblem {
  if (error instanceof LitsDataError) return { file: error.file, caseId, reason: error.reason };
  return { file: fallbackFile, caseId, reason: errorMessage(error) };
}

async function readHeader(
  file: string,
  caseId: number,
  problems: DatasetProblem[],
): Promise<NiftiHeaderInfo | null> {
  try {
    const h = await readNiftiHeader(file);
    const reason = dimensionProblem(h);
    if (!reason) return h;
    problems.push({ file, caseId, reason });
  } catch (error) {
    problems.push(problemOf(error, caseId, file));
  }
  return null;
}

interface CaseRules {
  tolerance: number;
  labelMap: LabelMap | null;
  config: PreprocessConfig;
}

/** Every problem of one case, in the order image header, mask header, geometry, image values, mask values. */
async function caseProblems(c: CaseFiles, rules: CaseRules): Promise<DatasetProblem[]> {
  const problems: DatasetProblem[] = [];
  const image = await readHeader(c.image, c.id, problems);
  const label = await readHeader(c.label, c.id, problems);
  if (image) {
    const tooSmall = sizeProblem(shape3(image.shape)!, rules.config);
    if (tooSmall) problems.push({ file: c.image, caseId: c.id, reason: tooSmall });
  }
  if (image && label) {
    const mismatch = geometryProblem(image, label, rules.tolerance);
    if (mismatch) problems.push({ file: c.label, caseId: c.id, reason: mismatch });
  }
  // Voxels are read only where a header cannot answer: values that may not be finite, and gzip files (a truncated
  // gzip is only found by inflating it).
  if (image && (mayHoldNonFinite(image) || /\.gz$/i.test(image.imageFile))) {
    try {
      const values = imageValueProblem(await readNifti(c.image, { native: true }));
      if (values) problems.push({ file: c.image, caseId: c.id, reason: values });
    } catch (error) {
      problems.push(problemOf(error, c.id, c.image));
    }
  }
  if (label) {
    try {
      const mask = await readNifti(c.label, { native: true });
      const reason = labelProblem(
        countLabelClasses(mask.data, rules.labelMap, scalingOf(mask)),
        rules.labelMap,
      );
      if (reason) problems.push({ file: c.label, caseId: c.id, reason });
    } catch (error) {
      problems.push(problemOf(error, c.id, c.label));
    }
  }
  return problems;
}

/**
 * Checks a data set before preprocessing or training, with the rules preprocessing applies (`rules.ts`): every volume
 * has a mask of the same shape and geometry, is 3-D, large enough for the preprocessing and free of NaN and infinite
 * values; every mask holds only values the label map (or LiTS) gives a class, and some liver.
 */
export async function validateDataset(dir: string, options: ValidateOptions = {}): Promise<ValidationReport> {
  const rules: CaseRules = {
    tolerance: options.geometryTolerance ?? DEFAULT_GEOMETRY_TOLERANCE,
    labelMap: options.labelMap ?? null,
    config: resolvePreprocessConfig(options.preprocessing),
  };
  let dataset;
  try {
    dataset = await discoverDataset(dir);
  } catch (error) {
    if (!(error instanceof LitsDataError)) throw error;
    return {
      root: dir,
      layout: null,
      caseCount: 0,
      validCases: [],
      validCaseFiles: [],
      ok: false,
      problems: [{ file: error.file, caseId: null, reason: error.reason }],
    };
  }
  const problems: DatasetProblem[] = [...dataset.problems];
  const valid: CaseFiles[] = [];
  let done = 0;
  for (const c of dataset.cases) {
    const found = await caseProblems(c, rules);
    if (found.length === 0) valid.push(c);
    problems.push(...found);
    options.onProgress?.(++done, dataset.cases.length, c.id);
  }
  return {
    root: dataset.root,
    layout: dataset.layout,
    caseCount: dataset.cases.length,
    validCases: valid.map((c) => c.id),
    validCaseFiles: valid,
    ok: problems.length === 0,
    problems,
  };
}
