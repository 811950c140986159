export {
  REPRO_MODES,
  RUN_VARIANTS,
  ELASTIC_VARIANTS,
  RUN_STATUSES,
  parseRunRecord,
  type ReproMode,
  type RunVariant,
  type ElasticVariant,
  type RunStatus,
  type ReproRunRecord,
} from './run-record.js';
export { RunRecordError } from './errors.js';
export { readReproReport, readRunRecords, type ReproReportFile } from './read-report.js';
export { sampleStats, boxStats, quantileSorted, type SampleStats, type BoxStats } from './statistics.js';
export {
  summariseRuns,
  summaryJson,
  classNamesOf,
  type ReproSummary,
  type ModeSummary,
  type CrashSummary,
  type ElasticSummary,
  type ElasticRunSummary,
  type ReproJsonLine,
} from './summary.js';
export { runsToCsv, formatSummaryMarkdown } from './tables.js';
export {
  buildBoxplot,
  renderPng,
  panelY,
  bundledFontFiles,
  MODE_COLOURS,
  type BoxplotFigure,
  type BoxplotOptions,
  type PanelLayout,
  type BoxLayout,
} from './boxplot.js';
export { planStudy, elasticSizeOf, type StudyPlanOptions, type PlannedRun } from './study-plan.js';
export { writeReproReport, REPORT_FILES, type ReportMeta, type WrittenReport } from './write-report.js';
