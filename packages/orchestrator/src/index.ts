export type { RunTracker, FinalStatus, TrackerFinish } from './tracking/run-tracker.js';
export { LocalRunTracker } from './tracking/local-tracker.js';
export { MlflowRunTracker, type MlflowTrackerOptions } from './tracking/mlflow-tracker.js';
export { writeSystemReport } from './tracking/system-report.js';
export { WorkerPool, type LiveWorker } from './orchestration/worker-pool.js';
export {
  RunSupervisor,
  RunDetachedError,
  type RunSetup,
  type RunOutcome,
  type SupervisorOptions,
} from './orchestration/run-supervisor.js';
export { RunLedger } from './orchestration/run-ledger.js';
export { loadRunRecord, runRecordKey, type RunRecord } from './orchestration/run-record.js';
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
  type ExperimentResult,
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
