import { MlflowApiError, MlflowNetworkError, MlflowValidationError } from './errors.js';
import type { MlflowClient } from './client.js';
import { checkKey } from './log-batch.js';
import { MLFLOW_LIMITS, type Metric, type Tag } from './types.js';

export interface BufferedLoggerOptions {
  /** Send as soon as this many entries wait. Default 1000 (MLflow's per-request metric limit). */
  batchSize?: number;
  /** Send whatever waits at least this often. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Bound on entries held in memory; `log` throws beyond it. Default 200,000. */
  maxPending?: number;
  /** Retry backoff: starts here and doubles up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told about each failed attempt; delivery keeps retrying. */
  onError?: (err: Error, attempt: number) => void;
}

export interface FlushResult {
  /** True when everything logged before the call reached the server. */
  delivered: boolean;
  /** Entries still waiting when the call returned. */
  pending: number;
  /** The last delivery error, when not delivered. */
  lastError?: string;
}

/** `log` was called while `maxPending` entries were still undelivered. Nothing was dropped. */
export class MlflowLoggerOverflowError extends Error {
  override readonly name = 'MlflowLoggerOverflowError';
  constructor(readonly limit: number) {
    super(
      `MLflow logger holds ${limit} undelivered entries (maxPending); refusing more rather than dropping data`,
    );
  }
}

type Entry = { kind: 'metric'; metric: Metric } | { kind: 'param'; param: Tag } | { kind: 'tag'; tag: Tag };

/**
 * Queues metrics, params and tags for one run and delivers them in order, exactly once, in
 * batches. While the server is unreachable it retries with exponential backoff. When a request
 * may have reached the server without an answer, it reads the metric history back and only
 * re-sends what is missing; per-key timestamps are kept strictly increasing so each point is
 * identifiable by (key, timestamp).
 */
export class BufferedMetricLogger {
  private readonly queue: Entry[] = [];
  private readonly batchSize: number;
  private readonly maxPending: number;
  private readonly timer: NodeJS.Timeout;
  private readonly lastTimestamp = new Map<string, number>();
  private enqueued = 0;
  private delivered = 0;
  private sending: Promise<void> | undefined;
  private closed = false;
  private cancel = new AbortController();
  private lastError: string | undefined;
  private waiters: Array<() => void> = [];
  /** Failed attempts so far; exposed for progress reporting. */
  failures = 0;

  constructor(
    private readonly client: MlflowClient,
    readonly runId: string,
    private readonly opts: BufferedLoggerOptions = {},
  ) {
    this.batchSize = Math.min(
      opts.batchSize ?? MLFLOW_LIMITS.metricsPerBatch,
      MLFLOW_LIMITS.entitiesPerBatch,
    );
    this.maxPending = opts.maxPending ?? 200_000;
    this.timer = setInterval(() => this.kick(), opts.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Queues one metric point. Throws on a bad key, after close, or when the memory bound is hit. */
  log(key: string, value: number, step = 0, timestamp = Date.now()): void {
    checkKey('metric', key);
    const last = this.lastTimestamp.get(key);
    const ts = last !== undefined && timestamp <= last ? last + 1 : timestamp;
    this.lastTimestamp.set(key, ts);
    this.push({ kind: 'metric', metric: { key, value, step, timestamp: ts } });
  }

  logMetrics(metrics: Record<string, number>, step: number, timestamp = Date.now()): void {
    this.reserve(Object.keys(metrics).length);
    for (const [key, value] of Object.entries(metrics)) this.log(key, value, step, timestamp);
  }

  logParams(params: Record<string, string | number | boolean>): void {
    this.reserve(Object.keys(params).length);
    for (const [key, value] of Object.entries(params)) {
      checkKey('param', key);
      this.push({ kind: 'param', param: { key, value: String(value) } });
    }
  }

  setTag(key: string, value: string): void {
    checkKey('tag', key);
    this.push({ kind: 'tag', tag: { key, value } });
  }

  /** Waits until everything logged so far is delivered, or `timeoutMs` passes. */
  async flush(timeoutMs = 30_000): Promise<FlushResult> {
    const target = this.enqueued;
    if (this.delivered >= target) return { delivered: true, pending: this.pending };
    const deadline = Date.now() + timeoutMs;
    this.kick(true);
    while (this.delivered < target && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.kick(true);
    }
    const ok = this.delivered >= target;
    return ok
      ? { delivered: true, pending: this.pending }
      : { delivered: false, pending: this.pending, lastError: this.lastError };
  }

  /** Flushes, then stops. After the deadline, retries stop and what is left is reported, not sent. */
  async close(timeoutMs = 30_000): Promise<FlushResult> {
    this.closed = true;
    const result = await this.flush(timeoutMs);
    clearInterval(this.timer);
    this.cancel.abort();
    await this.sending;
    return { ...result, pending: this.pending };
  }

  private reserve(n: number): void {
    if (this.closed) throw new MlflowValidationError('logger', 'closed');
    if (this.queue.length + n > this.maxPending) throw new MlflowLoggerOverflowError(this.maxPending);
  }

  private push(entry: Entry): void {
    this.reserve(1);
    this.queue.push(entry);
    this.enqueued++;
    if (this.queue.length >= this.batchSize) this.kick();
  }

  private kick(force = false): void {
    if (this.sending || this.queue.length === 0) return;
    if (!force && this.queue.length < this.batchSize && !this.dueByTimer()) return;
    this.sending = this.drain().finally(() => {
      this.sending = undefined;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  private lastSend = 0;
  private dueByTimer(): boolean {
    return Date.now() - this.lastSend >= (this.opts.flushIntervalMs ?? 1000) - 5;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.cancel.signal.aborted) {
      const batch = this.queue.slice(0, this.batchSize);
      if (!(await this.deliver(batch))) return;
      this.queue.splice(0, batch.length);
      this.delivered += batch.length;
      this.lastSend = Date.now();
      for (const w of this.waiters.splice(0)) w();
    }
  }

  /** Sends one batch until it is on the server; false only when cancelled by close(). */
  private async deliver(batch: Entry[]): Promise<boolean> {
    let toSend = batch;
    let backoff = this.opts.initialBackoffMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.logBatch(this.runId, {
          metrics: toSend.flatMap((e) => (e.kind === 'metric' ? [e.metric] : [])),
          params: toSend.flatMap((e) => (e.kind === 'param' ? [e.param] : [])),
          tags: toSend.flatMap((e) => (e.kind === 'tag' ? [e.tag] : [])),
        });
        this.lastError = undefined;
        return true;
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        if (error instanceof MlflowValidationError) throw error; // a programming error: surface it
        this.failures++;
        this.lastError = error.message;
        this.opts.onError?.(error, attempt);
        const maybeDelivered =
          !(error instanceof MlflowNetworkError && error.delivered === false) &&
          !(error instanceof MlflowApiError && !error.isRetryable);
        if (!(await this.sleep(backoff))) return false;
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 5000);
        if (maybeDelivered) {
          const missing = await this.reconcile(toSend).catch(() => undefined);
          if (missing) toSend = missing;
          if (toSend.length === 0) return true;
        }
      }
    }
  }

  /** The entries of `batch` the server does not hold yet (params and tags are idempotent: kept). */
  private async reconcile(batch: Entry[]): Promise<Entry[]> {
    const keys = new Set(batch.flatMap((e) => (e.kind === 'metric' ? [e.metric.key] : [])));
    const onServer = new Set<string>();
    for (const key of keys) {
      for (const m of await this.client.getMetricHistory(this.runId, key))
        onServer.add(`${key}\u0000${m.timestamp}`);
    }
    return batch.filter(
      (e) => e.kind !== 'metric' || !onServer.has(`${e.metric.key}\u0000${e.metric.timestamp}`),
    );
  }

  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.cancel.signal.aborted) return resolve(false);
      const t = setTimeout(() => resolve(true), ms);
      this.cancel.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve(false);
        },
        { once: true },
      );
    });
  }
}
