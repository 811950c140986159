export type FinalStatus = 'FINISHED' | 'FAILED' | 'KILLED';

export interface TrackerFinish {
  /** Everything logged reached its destination before the deadline. */
  delivered: boolean;
  pending: number;
  /** Entries the destination refused; they were dropped and each reported as it happened. */
  rejected?: number;
  lastError?: string;
}

/**
 * Where a run's params, tags, metrics and artifacts go: MLflow when MLFLOW_TRACKING_URI is set,
 * otherwise a local run folder. Logging calls never block training: they queue and return.
 * Step convention: the metrics of epoch e (0-based) are logged at step e.
 */
export interface RunTracker {
  readonly kind: 'mlflow' | 'local';
  /** MLflow run id, or the local run id. */
  readonly trackingRunId: string;
  /** The MLflow UI page, or the local run folder. */
  readonly location: string;
  logParams(params: Record<string, string | number | boolean>): void;
  setTags(tags: Record<string, string>): void;
  logMetrics(metrics: Record<string, number>, step: number): void;
  /** Copies/uploads a file or a folder (recursively) under `artifactPath`. Retries until `finish`. */
  logArtifact(localPath: string, artifactPath?: string): void;
  /** `metric@step` of the points the destination already holds for `keys` (to deliver the rest once). */
  loggedMetricSteps(keys: ReadonlySet<string>): Promise<Set<string>>;
  /** Tries to deliver what is queued within `timeoutMs` (the run goes on). */
  flush(timeoutMs: number): Promise<void>;
  /** Delivers what is queued (within `timeoutMs`) and sets the final status. */
  finish(status: FinalStatus, timeoutMs?: number): Promise<TrackerFinish>;
}
