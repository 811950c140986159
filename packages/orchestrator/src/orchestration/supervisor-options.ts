import type { Redis } from 'ioredis';
import type { RunEvent, RunPlan } from '@lits-ddp/protocol';
import type { RunTracker } from '../tracking/run-tracker.js';
import type { WorkerPool } from './worker-pool.js';

/** What a run's every generation shares: its plan less the generation's own fields. */
export type RunSetup = Omit<RunPlan, 'generation' | 'ranks' | 'resumeFrom' | 'engine'>;

export interface SupervisorOptions {
  redis: Redis;
  pool: WorkerPool;
  tracker: RunTracker;
  /** Makes every collective of (run, generation) reject within about a second. */
  abortCollectives: (runId: string, generation: number, reason: string) => Promise<void>;
  /** Worker ids to use first (the local launcher's own processes), in rank order. */
  preferredWorkers?: string[];
  /** Lease the preferred workers only (a Kubernetes Job's pods: rank = completion index). */
  exclusiveWorkers?: boolean;
  /** Fails the run for good, with the abort reason as its error (e.g. its Kubernetes Job failed). */
  fail?: AbortSignal;
  /** Called with workers found dead, before a restart (the local launcher respawns them). */
  onWorkersLost?: (workerIds: string[]) => Promise<void>;
  /** How long to wait for enough free workers at each (re)start, unless the spec's worker-wait-s says. Default 5 min. */
  waitForWorkersMs?: number;
  /** Whether an elastic run may take idle workers now (false while other experiments wait for them). */
  mayGrow?: () => Promise<boolean>;
  onEvent?: (event: RunEvent, streamId: string) => void;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Cancels the run (workers aborted, status cancelled). */
  signal?: AbortSignal;
  /**
   * Stops supervising without touching the run (the coordinator shuts down): workers keep training
   * and the next coordinator adopts the run. `run()` then rejects with RunDetachedError.
   */
  detach?: AbortSignal;
  /** Take over a run whose supervisor died: replay the event stream instead of starting afresh. */
  adopt?: boolean;
}
