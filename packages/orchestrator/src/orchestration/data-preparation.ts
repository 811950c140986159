import { relative } from 'node:path';
import {
  ensureCacheDir,
  litsSeedSplit,
  parseLabelMap,
  preprocessDataset,
  seededSplit,
  validateDataset,
  LITS_TEST_IDS,
  type CaseFiles,
  type LabelMap,
  type PreprocessConfigInput,
  type PreprocessProgress,
} from '@lits-ddp/lits-data';
import type { CaseRef, ResolvedSpec } from '@lits-ddp/protocol';
import { DatasetInvalidError } from '../errors.js';

export interface PreparedData {
  layout: 'lits' | 'msd';
  split: 'lits' | 'seeded';
  trainCases: CaseRef[];
  testCases: CaseRef[];
}

/** What preparation needs besides the spec; the callbacks report progress as it happens. */
export interface PreparationOptions {
  datasetPath: string;
  cacheDir: string;
  dataSeed: number;
  onValidate?: (done: number, total: number) => void;
  onPreprocess?: (p: PreprocessProgress) => void;
}

export function preprocessConfigOf(spec: ResolvedSpec): PreprocessConfigInput {
  return spec.preprocessing === 'improved'
    ? { preset: 'improved', cubeSize: spec['cube-size'] }
    : {
        preset: 'seed',
        targetSlices: spec['preprocess-slices'],
        downscale: spec['preprocess-downscale'],
        cubeSize: spec['cube-size'],
      };
}

/** The spec's `label-map` (already checked by `resolveSpec`), or null: LiTS/MSD's own 0/1/2. */
export function labelMapOf(spec: ResolvedSpec): LabelMap | null {
  const text = spec['label-map'];
  return text === undefined ? null : parseLabelMap(text, 'spec /label-map');
}

/**
 * The preparation itself, on the calling thread: `prepareData` runs it in a worker thread (`prepare-thread.ts`), as
 * NIfTI reads and resampling are synchronous per case and would stall the caller's event loop for seconds.
 *
 * Validates the data set with the rules of `lits data validate|preprocess` for this spec's preprocessing and
 * label map (every failing file named; one invalid case refuses the whole set, as a silently smaller set would
 * change the split), splits it (the seed's 13 LiTS test ids on the full LiTS set, a seeded split otherwise),
 * and preprocesses every case once into the shared cache.
 */
export async function prepareDataOnThisThread(
  spec: ResolvedSpec,
  opts: PreparationOptions,
): Promise<PreparedData> {
  const labelMap = labelMapOf(spec);
  const config = preprocessConfigOf(spec);
  await ensureCacheDir(opts.cacheDir);
  const report = await validateDataset(opts.datasetPath, {
    labelMap,
    preprocessing: config,
    onProgress: (d, t) => opts.onValidate?.(d, t),
  });
  if (!report.ok || !report.layout) {
    const problems =
      report.problems.length > 0 ? report.problems : [{ file: opts.datasetPath, reason: 'no cases found' }];
    throw new DatasetInvalidError(opts.datasetPath, problems);
  }
  const ids = [...report.validCases].sort((a, b) => a - b).slice(0, spec['dataset-size']);
  const isFullLits = LITS_TEST_IDS.every((id) => ids.includes(id)) && ids.length >= 131;
  const useLits = spec.split === 'lits' || (spec.split === 'auto' && isFullLits);
  if (spec.split === 'lits' && !LITS_TEST_IDS.some((id) => ids.includes(id))) {
    throw new DatasetInvalidError(opts.datasetPath, [
      {
        file: opts.datasetPath,
        reason: `split 'lits' needs the seed's test cases (${LITS_TEST_IDS.join(', ')}); none is here`,
      },
    ]);
  }
  const split = useLits ? litsSeedSplit(ids) : seededSplit(ids, spec['test-percent'], opts.dataSeed);
  if (split.train.length === 0 || split.test.length === 0) {
    throw new DatasetInvalidError(opts.datasetPath, [
      {
        file: opts.datasetPath,
        reason: `${ids.length} usable case(s) give ${split.train.length} train / ${split.test.length} test; need at least one of each`,
      },
    ]);
  }
  const byId = new Map<number, CaseFiles>(report.validCaseFiles.map((c) => [c.id, c]));
  const wanted = [...split.train, ...split.test].map((id) => byId.get(id) as CaseFiles);
  const manifest = await preprocessDataset(wanted, {
    cacheDir: opts.cacheDir,
    config,
    labelMap,
    onProgress: opts.onPreprocess,
  });
  const refOf = new Map<number, CaseRef>(
    manifest.entries.map((e) => [e.caseId, { caseId: e.caseId, cacheFile: relative(opts.cacheDir, e.file) }]),
  );
  return {
    layout: report.layout,
    split: useLits ? 'lits' : 'seeded',
    trainCases: split.train.map((id) => refOf.get(id) as CaseRef),
    testCases: split.test.map((id) => refOf.get(id) as CaseRef),
  };
}
