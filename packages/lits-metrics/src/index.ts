export { EvaluationError } from './errors.js';
export { squaredDistanceTransform, type Shape3 } from './distance-transform.js';
export {
  directedSurfaceDistances,
  regionBox,
  regionInBox,
  surfaceDistances,
  surfaceOf,
  unionBox,
  type Box,
  type Connectivity,
  type DirectedSurfaceDistances,
  type LabelRange,
  type SurfaceDistanceOptions,
  type SurfaceDistances,
} from './surface.js';
export {
  addCounts,
  countRegions,
  emptyCounts,
  emptySurfaceValue,
  overlapMetrics,
  surfaceNullReason,
  EMPTY_RULES,
  LIVER,
  REGIONS,
  REGION_NAMES,
  TUMOUR,
  type CaseCounts,
  type EmptyRule,
  type OverlapMetrics,
  type RegionCounts,
  type RegionName,
  type SurfaceNullReason,
} from './overlap.js';
export {
  checkSameGrid,
  readLabelVolume,
  type LabelVolume,
  type ReadLabelVolumeOptions,
} from './label-volume.js';
export { caseKeyOf, maskFiles, pairCases, type CasePair, type CasePairing } from './case-pairs.js';
export {
  caseMetricsOf,
  evaluateCase,
  evaluatePaths,
  summarise,
  type CaseMetrics,
  type EvaluateOptions,
  type EvaluatePathsOptions,
  type EvaluationReport,
  type MetricSet,
  type OverallMetrics,
  type PerRegion,
} from './evaluate.js';
export { formatReportTable, reportToCsv, reportToJson } from './report.js';
