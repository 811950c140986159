export { Communicator, type AllReduceOptions } from './communicator.js';
export type { ExactOptions, ReduceOp } from './reduce.js';
export {
  DEFAULT_CHUNK_BYTES,
  DEFAULT_EXACT_BLOCK_SIZE,
  DEFAULT_POLL_MS,
  DEFAULT_TIMEOUT_S,
  MAX_CHUNK_BYTES,
  type CommunicatorOptions,
  type ExactLanes,
  type RedisEndpoint,
} from './options.js';
export {
  CollectiveAbortedError,
  CollectiveArgumentError,
  CollectiveOptionsError,
  CollectiveProtocolError,
  CollectiveRedisError,
  CollectiveTimeoutError,
  CommunicatorClosedError,
  NonFiniteError,
  RedisCommandError,
  RedisUnavailableError,
  UnsupportedPlatformError,
  type NonFiniteReport,
  type WaitPoint,
} from './errors.js';
export { exactPrecision, fractionBits, type ExactPrecision } from './exact.js';
export { abortRun, cleanupRun, type RunTarget } from './run-admin.js';
export {
  RedisOutageTracker,
  isRedisUnreachable,
  redisOutageLines,
  redisOutages,
  type RedisEventSource,
  type RedisOutageFields,
  type RedisOutageLog,
} from './redis-outages.js';
export type { CommunicatorStats, OperationName, OperationStats } from './stats.js';
export {
  BucketPlan,
  DEFAULT_BUCKET_BYTES,
  allReduceExactTensors,
  allReduceTensors,
  type BucketRange,
} from './buckets.js';
