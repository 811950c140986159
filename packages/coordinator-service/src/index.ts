export {
  ExperimentStore,
  EXPERIMENT_STATUSES,
  TERMINAL_STATUSES,
  isExperimentId,
  newExperimentId,
  type ExperimentRecord,
  type ExperimentStatus,
} from './queue/experiment-store.js';
export { ExperimentQueue, QUEUE_NAME, bullPrefix } from './queue/experiment-queue.js';
export { QueueFeeder, type QueueFeederOptions } from './queue/queue-feeder.js';
export { ExperimentProcessor, type ProcessorOptions } from './queue/experiment-processor.js';
export { CapacityGate, type GateEntry, type GateOptions } from './queue/capacity-gate.js';
export { buildApp } from './server/build-app.js';
export { createLogger } from './server/logger.js';
export type { AppContext, AppOptions, CoordinatorApp } from './server/app-context.js';
export {
  startCoordinator,
  type CoordinatorOptions,
  type RunningCoordinator,
} from './server/start-coordinator.js';
export { runServeCli } from './server/serve-cli.js';
export {
  ApiRequestError,
  ConflictError,
  CoordinatorConfigError,
  NotFoundError,
  RedisUnavailableError,
  redisOutageOf,
} from './errors.js';
