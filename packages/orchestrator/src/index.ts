export type { RunTracker, FinalStatus, TrackerFinish } from './tracking/run-tracker.js';
export { LocalRunTracker } from './tracking/local-tracker.js';
export { MlflowRunTracker, type MlflowTrackerOptions } from './tracking/mlflow-tracker.js';
export { writeSystemReport } from './tracking/system-report.js';
export { WorkerPool, type LiveWorker, type WorkerPoolOptions } from './orchestration/worker-pool.js';
export { RunSupervisor } from './orchestration/run-supervisor.js';
export type { RunSetup, SupervisorOptions } from './orchestration/supervisor-options.js';
export { RunOutcome, ExperimentResult, decodeExperimentResult } from './orchestration/run-outcome.js';
export * from './errors.js';
export { RunLedger } from './orchestration/run-ledger.js';
export { loadRunRecord, type RunRecord } from './orchestration/run-record.js';
export {
  publishEvent,
  readEvents,
  readEventRange,
  type StreamedEvent,
  type EventPage,
} from './orchestration/run-events.js';
export {
  runExperiment,
  runSeeds,
  type ExperimentOptions,
  type ExperimentPhase,
} from './orchestration/run-experiment.js';
export {
  prepareData,
  preprocessConfigOf,
  DatasetInvalidError,
  type PreparedData,
  type PrepareOptions,
} from './orchestration/prepare-data.js';
export * from './kubernetes/index.js';
