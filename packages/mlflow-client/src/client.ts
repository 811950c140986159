import { readFile, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { MlflowApiError, MlflowParamConflictError, MlflowValidationError } from './errors.js';
import { checkKey, fitValue, splitBatch, type BatchContent } from './log-batch.js';
import { MlflowTransport, type TransportOptions } from './transport.js';
import {
  MLFLOW_LIMITS,
  type Experiment,
  type FileInfo,
  type Metric,
  type Run,
  type RunInfo,
  type RunStatus,
  type Tag,
  type ViewType,
} from './types.js';
import {
  RESPONSE_SHAPES,
  experimentFromWire,
  fileInfoFromWire,
  metricFromWire,
  runFromWire,
  runInfoFromWire,
  type WireExperiment,
  type WireFileInfo,
  type WireMetric,
  type WireRun,
  type WireRunInfo,
} from './wire.js';

const API = '/api/2.0/mlflow';
const ARTIFACTS_API = '/api/2.0/mlflow-artifacts/artifacts';

export interface MlflowClientOptions extends TransportOptions {
  /** Called when a param or tag value is cut to MLflow's length limit. */
  onTruncate?: (key: string, length: number) => void;
}

export interface CreateRunOptions {
  experimentId: string;
  runName?: string;
  /** Milliseconds since the epoch; defaults to now. */
  startTime?: number;
  tags?: Tag[];
}

export interface SearchRunsOptions {
  experimentIds: string[];
  /** MLflow's filter syntax, e.g. `params.lr = "0.0001" and tags.mode = "deterministic"`. */
  filter?: string;
  orderBy?: string[];
  /** Upper bound on runs returned across pages. Default 1000. */
  maxResults?: number;
  viewType?: ViewType;
}

/** Lets a caller cancel the requests of one call (the buffered logger does at its close deadline). */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Thin typed client of the MLflow REST API 2.0: experiments, runs, logging and proxied artifacts. */
export class MlflowClient {
  readonly transport: MlflowTransport;
  private readonly onTruncate: ((key: string, length: number) => void) | undefined;
  /** Params are immutable in MLflow, so each run remembers what it already logged. */
  private readonly loggedParams = new Map<string, Map<string, string>>();

  constructor(opts: MlflowClientOptions = {}) {
    this.transport = new MlflowTransport(opts);
    this.onTruncate = opts.onTruncate;
  }

  get trackingUri(): string {
    return this.transport.trackingUri;
  }

  /** The MLflow UI page of a run. */
  runUrl(experimentId: string, runId: string): string {
    return `${this.trackingUri}/#/experiments/${experimentId}/runs/${runId}`;
  }

  // ---- experiments ----

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const res = await this.transport.request<{ experiment?: WireExperiment }>(
        'GET',
        `${API}/experiments/get-by-name`,
        {
          query: { experiment_name: name },
          shape: RESPONSE_SHAPES.experiment,
        },
      );
      return res.experiment ? experimentFromWire(res.experiment) : undefined;
    } catch (err) {
      if (err instanceof MlflowApiError && err.isNotFound) return undefined;
      throw err;
    }
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    const res = await this.transport.request<{ experiment?: WireExperiment }>(
      'GET',
      `${API}/experiments/get`,
      {
        query: { experiment_id: experimentId },
        shape: RESPONSE_SHAPES.experiment,
      },
    );
    return experimentFromWire(res.experiment ?? {});
  }

  async createExperiment(
    name: string,
    opts: { artifactLocation?: string; tags?: Tag[] } = {},
  ): Promise<string> {
    const res = await this.transport.request<{ experiment_id?: string }>(
      'POST',
      `${API}/experiments/create`,
      {
        json: { name, artifact_location: opts.artifactLocation, tags: opts.tags },
        shape: RESPONSE_SHAPES.experimentId,
      },
    );
    return String(res.experiment_id ?? '');
  }

  /**
   * Idempotent: returns the active experiment of that name, creating it when absent. Safe when
   * several processes race (the loser of a create reads the winner's), and restores a deleted one.
   */
  async getOrCreateExperiment(name: string): Promise<Experiment> {
    const existing = await this.getExperimentByName(name);
    if (existing?.lifecycleStage === 'active') return existing;
    if (existing?.lifecycleStage === 'deleted') {
      await this.transport.request('POST', `${API}/experiments/restore`, {
        json: { experiment_id: existing.experimentId },
      });
      return this.getExperiment(existing.experimentId);
    }
    try {
      return await this.getExperiment(await this.createExperiment(name));
    } catch (err) {
      if (err instanceof MlflowApiError && err.isAlreadyExists) {
        const winner = await this.getExperimentByName(name);
        if (winner) return winner;
      }
      throw err;
    }
  }

  // ---- runs ----

  async createRun(opts: CreateRunOptions): Promise<Run> {
    const tags = [...(opts.tags ?? [])];
    const runNameTag = tags.find((t) => t.key === 'mlflow.runName');
    const runName = opts.runName ?? runNameTag?.value;
    if (runName !== undefined && !runNameTag) tags.push({ key: 'mlflow.runName', value: runName });
    for (const t of tags) checkKey('tag', t.key);
    const res = await this.transport.request<{ run?: WireRun }>('POST', `${API}/runs/create`, {
      json: {
        experiment_id: opts.experimentId,
        run_name: runName,
        start_time: opts.startTime ?? Date.now(),
        tags: tags.map((t) => fitValue(t, MLFLOW_LIMITS.tagValueLength, this.onTruncate)),
      },
      shape: RESPONSE_SHAPES.run,
    });
    return runFromWire(res.run ?? {});
  }

  async updateRun(
    runId: string,
    update: { status: RunStatus; endTime?: number; runName?: string },
  ): Promise<RunInfo> {
    const terminal = update.status === 'FINISHED' || update.status === 'FAILED' || update.status === 'KILLED';
    const res = await this.transport.request<{ run_info?: WireRunInfo }>('POST', `${API}/runs/update`, {
      json: {
        run_id: runId,
        status: update.status,
        end_time: update.endTime ?? (terminal ? Date.now() : undefined),
        run_name: update.runName,
      },
      shape: RESPONSE_SHAPES.runInfo,
    });
    return runInfoFromWire(res.run_info ?? {});
  }

  async getRun(runId: string, call: CallOptions = {}): Promise<Run> {
    const res = await this.transport.request<{ run?: WireRun }>('GET', `${API}/runs/get`, {
      query: { run_id: runId },
      signal: call.signal,
      shape: RESPONSE_SHAPES.run,
    });
    return runFromWire(res.run ?? {});
  }

  /** Searches runs, following page tokens until `maxResults` runs or the last page. */
  async searchRuns(opts: SearchRunsOptions): Promise<Run[]> {
    const limit = opts.maxResults ?? 1000;
    const runs: Run[] = [];
    let pageToken: string | undefined;
    do {
      const res = await this.transport.request<{ runs?: WireRun[]; next_page_token?: string }>(
        'POST',
        `${API}/runs/search`,
        {
          json: {
            experiment_ids: opts.experimentIds,
            filter: opts.filter,
            order_by: opts.orderBy,
            run_view_type: opts.viewType ?? 'ACTIVE_ONLY',
            max_results: Math.min(limit - runs.length, 1000),
            page_token: pageToken,
          },
          shape: RESPONSE_SHAPES.runs,
        },
      );
      runs.push(...(res.runs ?? []).map(runFromWire));
      pageToken = res.next_page_token || undefined;
    } while (pageToken && runs.length < limit);
    return runs;
  }

  /** Every logged point of one metric, in the server's order (paged). */
  async getMetricHistory(runId: string, key: string, call: CallOptions = {}): Promise<Metric[]> {
    const points: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const res = await this.transport.request<{ metrics?: WireMetric[]; next_page_token?: string }>(
        'GET',
        `${API}/metrics/get-history`,
        {
          query: { run_id: runId, metric_key: key, max_results: 25_000, page_token: pageToken },
          signal: call.signal,
          shape: RESPONSE_SHAPES.metricHistory,
        },
      );
      points.push(...(res.metrics ?? []).map(metricFromWire));
      pageToken = res.next_page_token || undefined;
    } while (pageToken);
    return points;
  }

  // ---- logging ----

  /**
   * Logs metrics, params and tags in as many log-batch requests as MLflow's limits need.
   * Params already logged with the same value are skipped; a different value is refused here,
   * since MLflow params are immutable (MlflowParamConflictError, before anything is sent).
   */
  async logBatch(runId: string, content: BatchContent, call: CallOptions = {}): Promise<void> {
    for (const m of content.metrics ?? []) checkKey('metric', m.key);
    const params = this.newParams(runId, content.params ?? []);
    const tags = (content.tags ?? []).map((t) => {
      checkKey('tag', t.key);
      return fitValue(t, MLFLOW_LIMITS.tagValueLength, this.onTruncate);
    });
    for (const request of splitBatch({ metrics: content.metrics, params, tags })) {
      await this.transport.request('POST', `${API}/runs/log-batch`, {
        json: { run_id: runId, ...request },
        signal: call.signal,
      });
      const seen = this.loggedParams.get(runId) ?? new Map<string, string>();
      for (const p of request.params) seen.set(p.key, p.value);
      this.loggedParams.set(runId, seen);
    }
  }

  async logMetric(
    runId: string,
    key: string,
    value: number,
    step = 0,
    timestamp = Date.now(),
  ): Promise<void> {
    await this.logBatch(runId, { metrics: [{ key, value, step, timestamp }] });
  }

  async logParams(runId: string, params: Record<string, string | number | boolean>): Promise<void> {
    await this.logBatch(runId, {
      params: Object.entries(params).map(([key, value]) => ({ key, value: String(value) })),
    });
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    checkKey('tag', key);
    const tag = fitValue({ key, value }, MLFLOW_LIMITS.tagValueLength, this.onTruncate);
    await this.transport.request('POST', `${API}/runs/set-tag`, { json: { run_id: runId, ...tag } });
  }

  private newParams(runId: string, params: Tag[]): Tag[] {
    const seen = this.loggedParams.get(runId);
    const fresh = new Map<string, string>();
    for (const raw of params) {
      checkKey('param', raw.key);
      const p = fitValue(raw, MLFLOW_LIMITS.paramValueLength, this.onTruncate);
      const before = seen?.get(p.key) ?? fresh.get(p.key);
      if (before === undefined) fresh.set(p.key, p.value);
      else if (before !== p.value) throw new MlflowParamConflictError(p.key, before, p.value);
    }
    return [...fresh].map(([key, value]) => ({ key, value }));
  }

  // ---- artifacts (through the server's proxy) ----

  /** Uploads one file as `<artifactPath>/<name>` of the run. */
  async logArtifact(runId: string, localFile: string, artifactPath = '', name?: string): Promise<void> {
    const base = await this.artifactRoot(runId);
    const fileName = name ?? localFile.split(sep).pop() ?? 'artifact';
    const data = await readFile(localFile);
    await this.transport.request(
      'PUT',
      `${ARTIFACTS_API}/${encodePath(joinPath(base, artifactPath, fileName))}`,
      { body: data },
    );
  }

  /** Uploads a folder recursively under `artifactPath`, keeping its layout. Returns the number of files. */
  async logArtifacts(runId: string, localDir: string, artifactPath = ''): Promise<number> {
    const base = await this.artifactRoot(runId);
    const entries = await readdir(localDir, { recursive: true, withFileTypes: true });
    let count = 0;
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const full = join(entry.parentPath, entry.name);
      const rel = relative(localDir, full).split(sep).join('/');
      await this.transport.request(
        'PUT',
        `${ARTIFACTS_API}/${encodePath(joinPath(base, artifactPath, rel))}`,
        {
          body: await readFile(full),
        },
      );
      count++;
    }
    return count;
  }

  /** Lists one level of a run's artifacts; paths are relative to the run's artifact root. */
  async listArtifacts(runId: string, path = ''): Promise<FileInfo[]> {
    const res = await this.transport.request<{ files?: WireFileInfo[] }>('GET', `${API}/artifacts/list`, {
      query: { run_id: runId, path: path || undefined },
      shape: RESPONSE_SHAPES.files,
    });
    return (res.files ?? []).map(fileInfoFromWire);
  }

  async downloadArtifact(runId: string, path: string): Promise<Uint8Array> {
    const base = await this.artifactRoot(runId);
    return this.transport.request<Uint8Array>('GET', `${ARTIFACTS_API}/${encodePath(joinPath(base, path))}`, {
      raw: true,
    });
  }

  private readonly artifactRoots = new Map<string, string>();

  /** `mlflow-artifacts:/<exp>/<run>/artifacts` → `<exp>/<run>/artifacts`; other schemes are not proxied. */
  private async artifactRoot(runId: string): Promise<string> {
    const cached = this.artifactRoots.get(runId);
    if (cached) return cached;
    const uri = (await this.getRun(runId)).info.artifactUri;
    const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(uri);
    if (!match?.[1]) {
      throw new MlflowValidationError(
        `run ${runId} artifact_uri`,
        `"${uri}" is not served by the tracking server; start it with --serve-artifacts and no --default-artifact-root`,
      );
    }
    this.artifactRoots.set(runId, match[1]);
    return match[1];
  }
}

const joinPath = (...parts: string[]): string =>
  parts
    .flatMap((p) => p.split('/'))
    .filter((p) => p.length > 0)
    .join('/');

const encodePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');
