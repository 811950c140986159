import { basename } from 'node:path';
import { LitsDataError } from '../errors.js';
import { readNifti, readNiftiHeader, scalingOf, type NiftiVolume } from '../nifti/read.js';
import type { NiftiHeaderInfo } from '../nifti/header.js';
import { shape3 } from '../preprocess/grid.js';
import { discoverDataset, type DatasetLayout, type DatasetProblem } from './discover.js';

export interface ValidationReport {
  root: string;
  layout: DatasetLayout | null;
  /** Complete image/label pairs found. */
  caseCount: number;
  /** Pairs without any problem. */
  validCases: number[];
  ok: boolean;
  problems: DatasetProblem[];
}

export interface ValidateOptions {
  /** Largest allowed difference between image and mask affine entries, in mm (default 1e-3). */
  geometryTolerance?: number;
  onProgress?: (done: number, total: number, caseId: number) => void;
}

function problemOf(error: unknown, caseId: number, fallbackFile: string): DatasetProblem {
  if (error instanceof LitsDataError) return { file: error.file, caseId, reason: error.reason };
  return { file: fallbackFile, caseId, reason: (error as Error).message };
}

function isFloat(h: NiftiHeaderInfo): boolean {
  return h.datatype.name === 'float32' || h.datatype.name === 'float64';
}

/** The problems a header alone shows: dimensionality. */
function shapeProblem(h: NiftiHeaderInfo): string | null {
  if (shape3(h.shape)) return null;
  const dims = h.shape.length;
  return `${dims}-D image (shape ${h.shape.join('×')}); need a 3-D volume (a 4th dimension of 1 is fine)`;
}

function nanCount(v: NiftiVolume): number {
  let n = 0;
  for (let i = 0; i < v.data.length; i++) if (Number.isNaN(v.data[i])) n++;
  return n;
}

/** Label values outside {0, 1, 2} (after scaling), with their counts, most frequent first. */
function badLabels(v: NiftiVolume): Array<[string, number]> {
  const scale = scalingOf(v);
  const bad = new Map<string, number>();
  const data = v.data;
  if (!scale && data instanceof Uint8Array) {
    const hist = new Float64Array(256);
    for (let i = 0; i < data.length; i++) hist[data[i]!]!++;
    for (let value = 3; value < 256; value++) if (hist[value]! > 0) bad.set(String(value), hist[value]!);
  } else {
    for (let i = 0; i < data.length; i++) {
      const value = scale ? data[i]! * scale.slope + scale.inter : data[i]!;
      if (value === 0 || value === 1 || value === 2) continue;
      const key = String(value);
      bad.set(key, (bad.get(key) ?? 0) + 1);
    }
  }
  return [...bad.entries()].sort((a, b) => b[1] - a[1]);
}

function maxAffineDifference(a: number[][], b: number[][]): number {
  let max = 0;
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++) max = Math.max(max, Math.abs(a[r]![c]! - b[r]![c]!));
  return max;
}

/**
 * Checks a data set before training: every volume has a mask of the same shape and geometry, masks hold only 0, 1
 * and 2, volumes are 3-D and free of NaN. Reads voxels only where a header cannot answer: masks (values), float
 * images (NaN) and gzip files (which may be truncated).
 */
export async function validateDataset(dir: string, options: ValidateOptions = {}): Promise<ValidationReport> {
  const tolerance = options.geometryTolerance ?? 1e-3;
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
      ok: false,
      problems: [{ file: error.file, caseId: null, reason: error.reason }],
    };
  }
  const problems: DatasetProblem[] = [...dataset.problems];
  const validCases: number[] = [];
  let done = 0;
  for (const c of dataset.cases) {
    const before = problems.length;
    const headers: Array<NiftiHeaderInfo | null> = [];
    for (const file of [c.image, c.label]) {
      try {
        const h = await readNiftiHeader(file);
        const shapeIssue = shapeProblem(h);
        if (shapeIssue) problems.push({ file, caseId: c.id, reason: shapeIssue });
        headers.push(shapeIssue ? null : h);
      } catch (error) {
        problems.push(problemOf(error, c.id, file));
        headers.push(null);
      }
    }
    const [image, label] = headers;
    if (image && label) {
      const a = shape3(image.shape)!;
      const b = shape3(label.shape)!;
      if (a.some((n, i) => n !== b[i]))
        problems.push({
          file: c.label,
          caseId: c.id,
          reason: `shape ${b.join('×')} differs from ${basename(c.image)} (${a.join('×')})`,
        });
      else {
        const diff = maxAffineDifference(image.affine, label.affine);
        if (diff > tolerance)
          problems.push({
            file: c.label,
            caseId: c.id,
            reason: `geometry differs from ${basename(c.image)}: affines differ by up to ${diff.toPrecision(3)} mm (tolerance ${tolerance})`,
          });
      }
    }
    if (image && (isFloat(image) || /\.gz$/i.test(image.imageFile))) {
      try {
        const volume = await readNifti(c.image, { native: true });
        const nans = isFloat(volume) ? nanCount(volume) : 0;
        if (nans > 0)
          problems.push({ file: c.image, caseId: c.id, reason: `${nans} NaN voxel${nans === 1 ? '' : 's'}` });
      } catch (error) {
        problems.push(problemOf(error, c.id, c.image));
      }
    }
    if (label) {
      try {
        const bad = badLabels(await readNifti(c.label, { native: true }));
        if (bad.length > 0) {
          const shown = bad
            .slice(0, 5)
            .map(([value, count]) => `${value} (${count} voxel${count === 1 ? '' : 's'})`);
          problems.push({
            file: c.label,
            caseId: c.id,
            reason: `labels must be 0, 1 or 2; found ${shown.join(', ')}${bad.length > 5 ? ` and ${bad.length - 5} more values` : ''}`,
          });
        }
      } catch (error) {
        problems.push(problemOf(error, c.id, c.label));
      }
    }
    if (problems.length === before) validCases.push(c.id);
    options.onProgress?.(++done, dataset.cases.length, c.id);
  }
  return {
    root: dataset.root,
    layout: dataset.layout,
    caseCount: dataset.cases.length,
    validCases,
    ok: problems.length === 0,
    problems,
  };
}
