export {
  MlflowClient,
  type MlflowClientOptions,
  type CreateRunOptions,
  type SearchRunsOptions,
  type CallOptions,
} from './client.js';
export { BufferedMetricLogger, type BufferedLoggerOptions, type FlushResult } from './buffered-logger.js';
export {
  MlflowApiError,
  MlflowConfigError,
  MlflowLoggerOverflowError,
  MlflowNetworkError,
  MlflowParamConflictError,
  MlflowRejectedEntryError,
  MlflowValidationError,
  type EntryKind,
} from './errors.js';
export { splitBatch, type BatchContent, type BatchRequest } from './log-batch.js';
export { systemTags, detectGitCommit, type SystemTagOptions, type SourceType } from './system-tags.js';
export { MlflowTransport, type TransportOptions } from './transport.js';
export {
  MLFLOW_LIMITS,
  type Experiment,
  type FileInfo,
  type Metric,
  type Param,
  type Run,
  type RunData,
  type RunInfo,
  type RunStatus,
  type Tag,
  type ViewType,
} from './types.js';
