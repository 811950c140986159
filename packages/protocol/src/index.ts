export { DEFAULT_KEY_PREFIX, keyPrefix } from './namespace.js';
export * from './collective.js';
export {
  ExperimentSpecInput,
  SEED_PARAMS,
  OUR_PARAMS,
  SEED_PARAM_NAMES,
  DETERMINISM_MODES,
  ENGINES,
  ENGINE_KINDS,
  DEFAULT_ENGINE_THREADS,
  ResolvedSpec,
  type DeterminismMode,
  type EngineKind,
  type EngineName,
} from './spec.js';
export {
  resolveSpec,
  parseClassWeights,
  microBatchesPerStep,
  type SpecFieldError,
  type SpecResult,
} from './spec-validation.js';
export { workerKeys, runKeys, RUN_EVENTS_MAXLEN, RUN_KEYS_TTL_S } from './run-keys.js';
export { experimentKeys, admissionKeys, coordinatorKeys, experimentQueueKeys } from './service-keys.js';
export {
  WorkerInfo,
  EngineThreads,
  RunEngine,
  SystemInfo,
  WorkerState,
  WorkerCommand,
  RunPlan,
  RunPaths,
  CaseRef,
  RunSplitFile,
  RunSeeds,
  RunTrackerRef,
  RunRecordPhase,
  RunRecordHash,
} from './run-messages.js';
export type { RunEvent, RunStatus, StepTimings, GenerationChange } from './run-messages.js';
export {
  GENERATION_CHANGES,
  RUN_EVENT_FIELD,
  decodeRunEvent,
  runEventOfFields,
  runEventXadd,
} from './run-messages.js';
export { parseLabelMapText, type LabelMap, type LitsLabel } from './label-map.js';
export { decodeJson, checkJson, JsonDecodeError } from './json-decode.js';
export {
  EXPERIMENT_ID_PATTERN,
  ExperimentStatus,
  ErrorReply,
  ExperimentSubmission,
  ExperimentIdParams,
  SubmissionAccepted,
  CancelReply,
  ExperimentListQuery,
  ExperimentSummary,
  ExperimentGoneSummary,
  ExperimentListReply,
  ExperimentProgress,
  ExperimentDetail,
  MetricHistoryReply,
  ExperimentEventsQuery,
  WorkerView,
  WorkersReply,
  HealthReply,
} from './api-schemas.js';
