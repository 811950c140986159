import { keyPrefix } from './namespace.js';

/**
 * Redis keys of workers and runs. Collective (all-reduce) keys are in collective.ts. Every transient
 * key carries a TTL; run keys are deleted by the coordinator when the run's record expires.
 */
export const workerKeys = {
  /** SET of registered worker ids. */
  registry: (): string => `${keyPrefix()}:workers`,
  /** HASH of a worker's WorkerInfo fields (JSON values). */
  info: (workerId: string): string => `${keyPrefix()}:worker:${workerId}`,
  /** STRING with a TTL of 3 heartbeat intervals; its absence means the worker is gone. */
  heartbeat: (workerId: string): string => `${keyPrefix()}:worker:${workerId}:hb`,
  /** STRING = runId while a run holds the worker (SET NX PX, renewed by the supervisor). */
  lease: (workerId: string): string => `${keyPrefix()}:worker:${workerId}:lease`,
  /** LIST of WorkerCommand JSON (assign, abort, shutdown), popped by the worker. */
  inbox: (workerId: string): string => `${keyPrefix()}:worker:${workerId}:inbox`,
};

export const runKeys = {
  /** STRING: RunPlan JSON, rewritten at every (re)start with the new generation. */
  plan: (runId: string): string => `${keyPrefix()}:run:${runId}:plan`,
  /** STREAM of RunEvent (field `e` = JSON). Readers resume by stream id, so nothing is lost on reconnect. */
  events: (runId: string): string => `${keyPrefix()}:run:${runId}:events`,
  /** STRING: the current RunStatus. */
  status: (runId: string): string => `${keyPrefix()}:run:${runId}:status`,
  /** STRING set to a reason when the run is cancelled (checked by the supervisor and workers). */
  cancel: (runId: string): string => `${keyPrefix()}:run:${runId}:cancel`,
  /**
   * HASH: what a coordinator needs to take over the run (RunRecordHash: seeds, tracker, phase, result).
   * Kept while the run lives, readable for RUN_KEYS_TTL_S once it is done.
   */
  record: (runId: string): string => `${keyPrefix()}:run:${runId}:record`,
};

/** Approximate cap of a run's event stream (XADD MAXLEN ~). */
export const RUN_EVENTS_MAXLEN = 100_000;
/** How long a finished run's keys stay readable. */
export const RUN_KEYS_TTL_S = 7 * 24 * 3600;
