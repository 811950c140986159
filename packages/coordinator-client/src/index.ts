export {
  CoordinatorClient,
  type ClientOptions,
  type ExperimentDetail,
  type ExperimentSummary,
  type FollowMessage,
  type WorkerView,
} from './coordinator-client.js';
export {
  CoordinatorApiError,
  CoordinatorResponseError,
  CoordinatorUnreachableError,
  type FieldError,
} from './errors.js';
