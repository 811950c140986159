import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { BufferedMetricLogger, MlflowClient, systemTags, type Tag } from '@lits-ddp/mlflow-client';
import { errorMessage } from '@lits-ddp/errors';
import { TrackingUnavailableError } from '../errors.js';
import type { FinalStatus, RunTracker, TrackerFinish } from './run-tracker.js';

export interface MlflowTrackerOptions {
  trackingUri?: string;
  experimentName: string;
  runName: string;
  tags?: Record<string, string>;
  /** For the `mlflow.source.git.commit` system tag; null = unknown (detected when absent). */
  gitCommit?: string | null;
  /** How long to keep retrying the run's creation when MLflow is down at start. */
  createTimeoutMs?: number;
  onError?: (message: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Retries `fn` with backoff until it succeeds or `timeoutMs` passes. */
async function retrying<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T>,
  onError?: (m: string) => void,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 250; ; wait = Math.min(wait * 2, 5000)) {
    try {
      return await fn();
    } catch (err) {
      const message = `${what}: ${errorMessage(err)}`;
      if (Date.now() + wait > deadline) throw new TrackingUnavailableError(message, err);
      onError?.(message);
      await sleep(wait);
    }
  }
}

/** A run in MLflow; metrics, params and tags go through the buffered logger, which survives outages. */
export class MlflowRunTracker implements RunTracker {
  readonly kind = 'mlflow' as const;
  private readonly artifacts: Array<{ path: string; artifactPath: string }> = [];

  private constructor(
    private readonly client: MlflowClient,
    private readonly logger: BufferedMetricLogger,
    readonly trackingRunId: string,
    readonly location: string,
    private readonly onError: ((message: string) => void) | undefined,
  ) {}

  static async create(opts: MlflowTrackerOptions): Promise<MlflowRunTracker> {
    const client = new MlflowClient({ trackingUri: opts.trackingUri, timeoutMs: 15_000 });
    const timeout = opts.createTimeoutMs ?? 60_000;
    const run = await retrying(
      `creating the MLflow run in ${client.trackingUri}`,
      timeout,
      async () => {
        const exp = await client.getOrCreateExperiment(opts.experimentName);
        const tags: Tag[] = [
          ...systemTags({
            runName: opts.runName,
            sourceName: 'lits-ddp',
            sourceType: 'JOB',
            ...(opts.gitCommit !== undefined ? { gitCommit: opts.gitCommit } : {}),
          }),
          ...Object.entries(opts.tags ?? {}).map(([key, value]) => ({ key, value })),
        ];
        return client.createRun({ experimentId: exp.experimentId, runName: opts.runName, tags });
      },
      opts.onError,
    );
    return MlflowRunTracker.ofRun(client, run.info, opts.onError);
  }

  /** Continues an existing MLflow run (its coordinator stopped): nothing is created. */
  static async attach(opts: {
    trackingUri?: string;
    runId: string;
    createTimeoutMs?: number;
    onError?: (message: string) => void;
  }): Promise<MlflowRunTracker> {
    const client = new MlflowClient({ trackingUri: opts.trackingUri, timeoutMs: 15_000 });
    const run = await retrying(
      `reading MLflow run ${opts.runId} in ${client.trackingUri}`,
      opts.createTimeoutMs ?? 60_000,
      () => client.getRun(opts.runId),
      opts.onError,
    );
    return MlflowRunTracker.ofRun(client, run.info, opts.onError);
  }

  private static ofRun(
    client: MlflowClient,
    run: { runId: string; experimentId: string },
    onError?: (message: string) => void,
  ): MlflowRunTracker {
    const logger = new BufferedMetricLogger(client, run.runId, {
      onError: (e, attempt) => {
        if (attempt === 1 || attempt % 10 === 0)
          onError?.(`MLflow delivery (attempt ${attempt}): ${e.message}`);
      },
    });
    return new MlflowRunTracker(
      client,
      logger,
      run.runId,
      client.runUrl(run.experimentId, run.runId),
      onError,
    );
  }

  /** `metric@step` of every point MLflow holds for `keys` (retried while MLflow is unreachable). */
  async loggedMetricSteps(keys: ReadonlySet<string>): Promise<Set<string>> {
    const out = new Set<string>();
    for (const key of keys) {
      const history = await retrying(
        `reading the history of ${key}`,
        120_000,
        () => this.client.getMetricHistory(this.trackingRunId, key),
        this.onError,
      );
      for (const m of history) out.add(`${key}@${m.step}`);
    }
    return out;
  }

  async flush(timeoutMs: number): Promise<void> {
    await this.logger.flush(timeoutMs);
  }

  logParams(params: Record<string, string | number | boolean>): void {
    this.logger.logParams(params);
  }

  setTags(tags: Record<string, string>): void {
    for (const [k, v] of Object.entries(tags)) this.logger.setTag(k, v);
  }

  logMetrics(metrics: Record<string, number>, step: number): void {
    this.logger.logMetrics(metrics, step);
  }

  logArtifact(localPath: string, artifactPath = ''): void {
    this.artifacts.push({ path: localPath, artifactPath });
  }

  /** Metrics first, then artifacts, then the status, each retried until the deadline. */
  async finish(status: FinalStatus, timeoutMs = 120_000): Promise<TrackerFinish> {
    const deadline = Date.now() + timeoutMs;
    const flushed = await this.logger.close(timeoutMs);
    let lastError = flushed.lastError;
    let pending = flushed.pending;
    for (const a of this.artifacts.splice(0)) {
      try {
        await retrying(
          `uploading ${basename(a.path)}`,
          Math.max(1000, deadline - Date.now()),
          async () => {
            if (statSync(a.path).isDirectory())
              await this.client.logArtifacts(this.trackingRunId, a.path, a.artifactPath);
            else await this.client.logArtifact(this.trackingRunId, a.path, a.artifactPath);
          },
          this.onError,
        );
      } catch (err) {
        pending++;
        lastError = errorMessage(err);
      }
    }
    try {
      await retrying(
        'setting the run status',
        Math.max(1000, deadline - Date.now()),
        () => this.client.updateRun(this.trackingRunId, { status }),
        this.onError,
      );
    } catch (err) {
      pending++;
      lastError = errorMessage(err);
    }
    // A refused entry was dropped (and reported through onError): the run is not whole on the server.
    const rejected = flushed.rejected.length;
    if (rejected > 0) lastError ??= flushed.rejected.at(-1)?.message;
    return pending === 0 && rejected === 0
      ? { delivered: true, pending: 0 }
      : { delivered: false, pending, ...(rejected ? { rejected } : {}), ...(lastError ? { lastError } : {}) };
  }
}
