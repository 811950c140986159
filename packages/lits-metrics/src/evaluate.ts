import type { LabelMap } from '@lits-ddp/lits-data';
import type { Shape3 } from './distance-transform.js';
import { pairCases } from './case-pairs.js';
import { checkSameGrid, readLabelVolume, type LabelVolume } from './label-volume.js';
import {
  addCounts,
  countRegions,
  emptyCounts,
  emptySurfaceValue,
  overlapMetrics,
  REGION_NAMES,
  REGIONS,
  surfaceNullReason,
  type CaseCounts,
  type EmptyRule,
  type RegionName,
  type SurfaceNullReason,
} from './overlap.js';
import { surfaceDistances, type SurfaceDistanceOptions } from './surface.js';

export type PerRegion = Record<RegionName, number | null>;

/** The metrics every row and summary holds (the `--json` contract of `lits evaluate`). */
export interface MetricSet {
  diceLiver: number | null;
  diceTumour: number | null;
  iou: PerRegion;
  voe: PerRegion;
  rvd: PerRegion;
}

export interface CaseMetrics extends MetricSet {
  case: string;
  pred: string;
  truth: string;
  /** Average symmetric surface distance (mm), only with `surface: true`. */
  assd?: PerRegion;
  /** Maximum symmetric surface distance (Hausdorff, mm), only with `surface: true`. */
  mssd?: PerRegion;
  /** Why ASSD / MSSD are null for a region (a mask is empty), under every empty rule; only with `surface: true`. */
  surfaceNullReason?: Record<RegionName, SurfaceNullReason | null>;
  counts: CaseCounts;
}

export interface OverallMetrics extends MetricSet {
  /** Means over cases (null values left out); `global` holds the metrics of all cases' voxels pooled. */
  cases: number;
  emptyRule: EmptyRule;
  assd?: PerRegion;
  mssd?: PerRegion;
  /**
   * Cases whose ASSD / MSSD are undefined (a mask empty), with `surface: true`; `emptyRule` says whether the means
   * count them as 0 (`lits`; `one` for both empty) or leave them out.
   */
  surfaceNullCases?: Record<RegionName, number>;
  global: MetricSet;
  /** Cases whose ground truth has no voxel of the region. */
  emptyTruth: Record<RegionName, number>;
}

export interface EvaluationReport {
  cases: CaseMetrics[];
  overall: OverallMetrics;
  unmatchedPredictions: string[];
}

export interface EvaluateOptions {
  /** How empty masks score (default `lits`, see `EmptyRule`). */
  emptyRule?: EmptyRule;
  /** Also compute ASSD and MSSD in mm (slower). */
  surface?: boolean;
  surfaceOptions?: SurfaceDistanceOptions;
  /** Largest allowed difference of an affine entry between prediction and truth (mm, default 1e-3). */
  geometryTolerance?: number;
  /** What the ground truth's stored values mean (a multi-organ mask: `parseLabelMap('liver=5')`). */
  labelMap?: LabelMap | null;
  /** The same for predictions (another tool's labels); without it they must hold 0, 1 and 2. */
  predLabelMap?: LabelMap | null;
}

function metricSet(counts: CaseCounts, rule: EmptyRule): MetricSet {
  const liver = overlapMetrics(counts.liver, rule);
  const tumour = overlapMetrics(counts.tumour, rule);
  return {
    diceLiver: liver.dice,
    diceTumour: tumour.dice,
    iou: { liver: liver.iou, tumour: tumour.iou },
    voe: { liver: liver.voe, tumour: tumour.voe },
    rvd: { liver: liver.rvd, tumour: tumour.rvd },
  };
}

/** Metrics of one case from label volumes already on the same grid (checked by the caller). */
export function caseMetricsOf(
  pred: Uint8Array,
  truth: Uint8Array,
  shape: Shape3,
  spacing: Shape3,
  options: EvaluateOptions = {},
): Omit<CaseMetrics, 'case' | 'pred' | 'truth'> {
  const rule = options.emptyRule ?? 'lits';
  const counts = countRegions(pred, truth);
  const result: Omit<CaseMetrics, 'case' | 'pred' | 'truth'> = { ...metricSet(counts, rule), counts };
  if (options.surface) {
    const assd: PerRegion = { liver: null, tumour: null };
    const mssd: PerRegion = { liver: null, tumour: null };
    const reasons: Record<RegionName, SurfaceNullReason | null> = { liver: null, tumour: null };
    for (const region of REGION_NAMES) {
      reasons[region] = surfaceNullReason(counts[region]);
      if (reasons[region]) continue;
      const d = surfaceDistances(pred, truth, shape, spacing, REGIONS[region], options.surfaceOptions);
      assd[region] = d?.assd ?? null;
      mssd[region] = d?.mssd ?? null;
    }
    result.assd = assd;
    result.mssd = mssd;
    result.surfaceNullReason = reasons;
  }
  return result;
}

/** Reads and checks one prediction/ground-truth pair; surface distances use the ground truth's header spacing. */
export async function evaluateCase(
  predFile: string | LabelVolume,
  truthFile: string | LabelVolume,
  options: EvaluateOptions & { caseName?: string } = {},
): Promise<CaseMetrics> {
  const pred =
    typeof predFile === 'string'
      ? await readLabelVolume(predFile, { labelMap: options.predLabelMap ?? null, role: 'prediction' })
      : predFile;
  const truth =
    typeof truthFile === 'string'
      ? await readLabelVolume(truthFile, { labelMap: options.labelMap ?? null, role: 'ground truth' })
      : truthFile;
  checkSameGrid(pred, truth, options.geometryTolerance);
  return {
    case: options.caseName ?? truth.file,
    pred: pred.file,
    truth: truth.file,
    ...caseMetricsOf(pred.labels, truth.labels, truth.shape, truth.spacing, options),
  };
}

function mean(values: Array<number | null | undefined>): number | null {
  const kept = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return kept.length === 0 ? null : kept.reduce((a, b) => a + b, 0) / kept.length;
}

function meanPerRegion(rows: Array<PerRegion | undefined>): PerRegion {
  return { liver: mean(rows.map((r) => r?.liver)), tumour: mean(rows.map((r) => r?.tumour)) };
}

/** Per-case means (null values left out) and the pooled ("global") metrics over all cases. */
export function summarise(cases: readonly CaseMetrics[], rule: EmptyRule = 'lits'): OverallMetrics {
  const pooled = cases.reduce((acc, c) => addCounts(acc, c.counts), emptyCounts());
  const overall: OverallMetrics = {
    cases: cases.length,
    emptyRule: rule,
    diceLiver: mean(cases.map((c) => c.diceLiver)),
    diceTumour: mean(cases.map((c) => c.diceTumour)),
    iou: meanPerRegion(cases.map((c) => c.iou)),
    voe: meanPerRegion(cases.map((c) => c.voe)),
    rvd: meanPerRegion(cases.map((c) => c.rvd)),
    global: metricSet(pooled, rule),
    emptyTruth: {
      liver: cases.filter((c) => c.counts.liver.truth === 0).length,
      tumour: cases.filter((c) => c.counts.tumour.truth === 0).length,
    },
  };
  if (cases.some((c) => c.assd)) {
    // A case's null distance with a reason is an empty mask: the rule decides what the mean counts it as.
    const ruled = (c: CaseMetrics, values: PerRegion | undefined): PerRegion | undefined => {
      if (!values) return undefined;
      const value = (r: RegionName) =>
        values[r] ?? (c.surfaceNullReason?.[r] ? (emptySurfaceValue(c.counts[r], rule) ?? null) : null);
      return { liver: value('liver'), tumour: value('tumour') };
    };
    overall.assd = meanPerRegion(cases.map((c) => ruled(c, c.assd)));
    overall.mssd = meanPerRegion(cases.map((c) => ruled(c, c.mssd)));
    overall.surfaceNullCases = {
      liver: cases.filter((c) => c.surfaceNullReason?.liver).length,
      tumour: cases.filter((c) => c.surfaceNullReason?.tumour).length,
    };
  }
  return overall;
}

export interface EvaluatePathsOptions extends EvaluateOptions {
  /** A mask file or a folder of masks (see `pairCases`). */
  pred: string;
  /** A mask file, or a folder: LiTS (segmentation-N beside volume-N), MSD (labelsTr/), or masks only. */
  truth: string;
  onCase?: (done: number, total: number, result: CaseMetrics) => void;
}

/** `lits evaluate`: pairs the files, evaluates one case at a time (two volumes in memory), then summarises. */
export async function evaluatePaths(options: EvaluatePathsOptions): Promise<EvaluationReport> {
  const { pairs, unmatchedPredictions } = await pairCases(options.pred, options.truth);
  const cases: CaseMetrics[] = [];
  for (const pair of pairs) {
    const result = await evaluateCase(pair.pred, pair.truth, { ...options, caseName: pair.case });
    cases.push(result);
    options.onCase?.(cases.length, pairs.length, result);
  }
  return { cases, overall: summarise(cases, options.emptyRule ?? 'lits'), unmatchedPredictions };
}
