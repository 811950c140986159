export type { RunTracker, FinalStatus, TrackerFinish } from './tracking/run-tracker.js';
export { LocalRunTracker } from './tracking/local-tracker.js';
export { MlflowRunTracker, type MlflowTrackerOptions } from './tracking/mlflow-tracker.js';
export { WorkerPool, type LiveWorker } from './orchestration/worker-pool.js';
export {
  RunSupervisor,
  type RunSetup,
  type RunOutcome,
  type SupervisorOptions,
} from './orchestration/run-supervisor.js';
export { publishEvent, readEvents, decodeEvent, type StreamedEvent } from './orchestration/run-events.js';
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
export { writeSystemReport } from './tracking/system-report.js';
