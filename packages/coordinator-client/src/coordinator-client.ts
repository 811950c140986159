import { createParser } from 'eventsource-parser';
import type { ExperimentSpecInput, RunEvent } from '@lits-ddp/protocol';

export interface ClientOptions {
  /** Coordinator base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  token?: string;
  timeoutMs?: number;
}

/** A non-2xx answer; `errors` holds the field errors of a 400. */
export class CoordinatorApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors: Array<{ path: string; message: string }> = [],
  ) {
    super(message);
  }
}

export interface ExperimentSummary {
  id: string;
  status: string;
  priority: number;
  workers: number;
  experimentName: string;
  runName?: string;
  submittedAt: string;
  startedAt?: string;
  endedAt?: string;
  restarts: number;
  latestMetrics?: Record<string, number>;
}

export interface ExperimentDetail extends ExperimentSummary {
  spec: Record<string, unknown>;
  progress?: {
    epoch: number;
    epochs: number;
    step: number;
    stepsPerEpoch: number;
    fraction: number;
    loss: number;
  };
  testMetrics?: Record<string, number>;
  error?: string;
  queuePosition?: number;
  workerIds?: string[];
  tracking?: { kind: 'mlflow' | 'local'; runId: string; url: string };
  model?: {
    /** The checkpoint folder `lits predict --model` loads. */
    checkpoint?: { path: string; kind: 'best' | 'final' | 'last'; artifact?: string };
    /** The tfjs export (model.json + weights) for tf.loadLayersModel; not loadable by `lits predict`. */
    tfjsExport?: {
      path: string;
      artifact?: string;
      files: Array<{ name: string; bytes: number; url: string }>;
    };
  };
  links: Record<string, string>;
}

export interface WorkerView {
  id: string;
  host: string;
  engine: string;
  device: string;
  state: string;
  runId?: string;
  rank?: number;
  leasedTo?: string;
  heartbeatAgeMs?: number;
  lastHeartbeatAt?: string;
  startedAt: string;
}

export type FollowMessage =
  { kind: 'event'; id: string; event: RunEvent } | { kind: 'end'; summary: ExperimentSummary };

/** Typed client of the coordinator's REST API and its SSE stream (used by `lits submit/status/logs/cancel`). */
export class CoordinatorClient {
  private readonly base: string;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.url.replace(/\/+$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}), ...extra };
  }

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: this.headers({
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        }),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new Error(
        `cannot reach the coordinator at ${this.base}: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        },
      );
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (!res.ok)
      throw new CoordinatorApiError(
        res.status,
        `${res.status} ${typeof json.message === 'string' ? json.message : res.statusText}`,
        Array.isArray(json.errors) ? (json.errors as Array<{ path: string; message: string }>) : [],
      );
    return json as T;
  }

  submit(
    spec: ExperimentSpecInput | Record<string, unknown>,
    opts: { id?: string; priority?: number; idempotencyKey?: string } = {},
  ): Promise<{ id: string; status: string; links: Record<string, string> }> {
    const body =
      opts.id !== undefined || opts.priority !== undefined
        ? {
            spec,
            ...(opts.id ? { id: opts.id } : {}),
            ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
          }
        : spec;
    return this.request(
      'POST',
      '/v1/experiments',
      body,
      opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {},
    );
  }

  get(id: string): Promise<ExperimentDetail> {
    return this.request('GET', `/v1/experiments/${encodeURIComponent(id)}`);
  }

  list(
    opts: { status?: string; offset?: number; limit?: number } = {},
  ): Promise<{ total: number; items: ExperimentSummary[] }> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) q.set(k, String(v));
    return this.request('GET', `/v1/experiments${q.size ? `?${q}` : ''}`);
  }

  cancel(id: string): Promise<{ id: string; status: 'cancelled' | 'cancelling' }> {
    return this.request('DELETE', `/v1/experiments/${encodeURIComponent(id)}`);
  }

  metrics(
    id: string,
  ): Promise<{ id: string; metrics: Record<string, Array<{ step: number; value: number }>> }> {
    return this.request('GET', `/v1/experiments/${encodeURIComponent(id)}/metrics`);
  }

  workers(): Promise<{ workers: WorkerView[] }> {
    return this.request('GET', '/v1/workers');
  }

  /**
   * Follows the experiment's SSE stream to its end, reconnecting with Last-Event-ID after a broken
   * connection, so no event is lost or repeated. Resolves with the final summary.
   */
  async follow(
    id: string,
    onMessage: (m: FollowMessage) => void,
    opts: { lastEventId?: string; signal?: AbortSignal; retryMs?: number } = {},
  ): Promise<ExperimentSummary> {
    let lastEventId = opts.lastEventId ?? '';
    let failures = 0;
    for (;;) {
      let summary: ExperimentSummary | undefined;
      try {
        const res = await fetch(`${this.base}/v1/experiments/${encodeURIComponent(id)}/events`, {
          headers: this.headers({
            accept: 'text/event-stream',
            ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
          }),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        if (!res.ok || !res.body) {
          const body = (await res.text().catch(() => '')).slice(0, 300);
          const err = new CoordinatorApiError(res.status, `${res.status} ${body}`);
          if (res.status < 500) throw err;
          throw Object.assign(err, { retry: true });
        }
        const parser = createParser({
          onEvent: (m) => {
            if (m.event === 'end') {
              summary = JSON.parse(m.data) as ExperimentSummary;
              onMessage({ kind: 'end', summary });
              return;
            }
            if (m.id) lastEventId = m.id;
            onMessage({ kind: 'event', id: m.id ?? '', event: JSON.parse(m.data) as RunEvent });
          },
        });
        const decoder = new TextDecoder();
        for await (const chunk of res.body)
          parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
        failures = 0;
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        if (err instanceof CoordinatorApiError && !(err as CoordinatorApiError & { retry?: boolean }).retry)
          throw err;
        if (++failures > 30) throw err;
      }
      if (summary) return summary;
      await new Promise((r) => setTimeout(r, opts.retryMs ?? 1000));
    }
  }
}
