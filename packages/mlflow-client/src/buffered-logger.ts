import { errorMessage } from '@lits-ddp/errors';
import {
  MlflowLoggerOverflowError,
  MlflowNetworkError,
  MlflowValidationError,
  type MlflowRejectedEntryError,
} from './errors.js';
import type { MlflowClient } from './client.js';
import { checkKey } from './log-batch.js';
import {
  asError,
  contentOf,
  diagnoseRefusal,
  headThatFits,
  isRefusal,
  metricId,
  metricsOnServer,
  raceDelay,
  rejectionOf,
  sleepUnlessAborted,
  type Entry,
  type Payload,
} from './logger-entries.js';
import { MLFLOW_LIMITS } from './types.js';

export interface BufferedLoggerOptions {
  /** Send as soon as this many entries wait. Default 1000 (MLflow's per-request metric limit). */
  batchSize?: number;
  /** Every tick sends whatever waits, so no entry waits longer than this plus a request. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Bound on entries held in memory; `log` throws beyond it. Default 200,000. */
  maxPending?: number;
  /** Retry backoff: starts here and doubles up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Told about each failed attempt (delivery keeps retrying) and about each entry MLflow refused for
   * good (`err instanceof MlflowRejectedEntryError`: that entry is dropped, the rest is delivered).
   * An error thrown by the callback is ignored.
   */
  onError?: (err: Error, attempt: number) => void;
}

export interface FlushResult {
  /** True when everything logged before the call is on the server: nothing pending, nothing refused. */
  delivered: boolean;
  /** True when the deadline passed with entries logged before the call still pending. */
  timedOut: boolean;
  /** Entries (metrics, params, tags) still queued when the call returned. */
  pending: number;
  /**
   * Of `pending`, the entries that went out in a request without a known outcome (still in flight,
   * or abandoned at close()'s deadline): the server may already hold them.
   */
  unconfirmed: number;
  /** Entries MLflow refused and the logger dropped; each is reported by one result only. */
  rejected: MlflowRejectedEntryError[];
  /** The last delivery error, when not delivered. */
  lastError?: string;
}

const MAX_KEPT_REFUSALS = 1000;

/**
 * Queues metrics, params and tags for one run and delivers them in order, in batches. While the
 * server is unreachable it retries with exponential backoff. When a request may have reached the
 * server without an answer, it reads the metric history back and only re-sends what is missing;
 * per-key timestamps are kept strictly increasing so each point is identifiable by (key, timestamp).
 * An entry MLflow refuses for good is isolated, dropped and reported; it never stops the others.
 */
export class BufferedMetricLogger {
  private readonly queue: Entry[] = [];
  private readonly batchSize: number;
  private readonly maxPending: number;
  private readonly timer: NodeJS.Timeout;
  private readonly lastTimestamp = new Map<string, number>();
  private nextSeq = 0;
  /** Entries with a lower seq are due now: a timer tick or a flush asked for them. */
  private dueBefore = 0;
  private sending: Promise<void> | undefined;
  private closed = false;
  private readonly cancel = new AbortController();
  private lastError: string | undefined;
  private inFlight = 0;
  private unknownOutcome = 0;
  private readonly refusals: Array<{ seq: number; error: MlflowRejectedEntryError }> = [];
  private readonly waiters = new Set<() => void>();
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
    this.timer = setInterval(() => {
      this.dueBefore = this.nextSeq;
      this.kick();
    }, opts.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Queues one metric point. Throws on a bad key or number, after close, or when the memory bound is hit. */
  log(key: string, value: number, step = 0, timestamp = Date.now()): void {
    this.reserve(1);
    this.checkMetric(key, value, step, timestamp);
    this.pushMetric(key, value, step, timestamp);
  }

  logMetrics(metrics: Record<string, number>, step: number, timestamp = Date.now()): void {
    const entries = Object.entries(metrics);
    this.reserve(entries.length);
    for (const [key, value] of entries) this.checkMetric(key, value, step, timestamp);
    for (const [key, value] of entries) this.pushMetric(key, value, step, timestamp);
  }

  logParams(params: Record<string, string | number | boolean>): void {
    const entries = Object.entries(params);
    this.reserve(entries.length);
    for (const [key] of entries) checkKey('param', key);
    for (const [key, value] of entries) this.push({ kind: 'param', param: { key, value: String(value) } });
  }

  setTag(key: string, value: string): void {
    this.reserve(1);
    checkKey('tag', key);
    this.push({ kind: 'tag', tag: { key, value: String(value) } });
  }

  /**
   * Waits until everything logged so far is on the server, or `timeoutMs` passes; returns by the
   * deadline either way. A request still in flight then goes on, and delivery continues after.
   */
  async flush(timeoutMs = 30_000): Promise<FlushResult> {
    const deadline = Date.now() + timeoutMs;
    const target = this.nextSeq;
    await this.settledOrDeadline(target, deadline);
    return this.result(target);
  }

  /**
   * Flushes, then stops, by the deadline. At the deadline retries stop and a request in flight is
   * abandoned (its entries stay queued and are counted as `unconfirmed`: the server may hold them).
   */
  async close(timeoutMs = 30_000): Promise<FlushResult> {
    const deadline = Date.now() + timeoutMs;
    const target = this.nextSeq;
    this.closed = true;
    await this.settledOrDeadline(target, deadline);
    clearInterval(this.timer);
    this.cancel.abort();
    // Aborting settles every request at once; the bound only guards against a slow onError callback.
    if (this.sending) await raceDelay(this.sending, Math.max(20, deadline - Date.now()));
    return this.result(target);
  }

  private checkMetric(key: string, value: number, step: number, timestamp: number): void {
    checkKey('metric', key);
    const field = `metric ${key}`;
    if (typeof value !== 'number')
      throw new MlflowValidationError(field, `value must be a number, got ${typeof value}`);
    if (!Number.isSafeInteger(step))
      throw new MlflowValidationError(field, `step must be an integer, got ${step}`);
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new MlflowValidationError(
        field,
        `timestamp must be a non-negative integer (ms since the epoch), got ${timestamp}`,
      );
    }
  }

  private pushMetric(key: string, value: number, step: number, timestamp: number): void {
    const last = this.lastTimestamp.get(key);
    const ts = last !== undefined && timestamp <= last ? last + 1 : timestamp;
    this.lastTimestamp.set(key, ts);
    this.push({ kind: 'metric', metric: { key, value, step, timestamp: ts } });
  }

  private reserve(n: number): void {
    if (this.closed) throw new MlflowValidationError('logger', 'closed');
    if (this.queue.length + n > this.maxPending) throw new MlflowLoggerOverflowError(this.maxPending);
  }

  private push(payload: Payload): void {
    this.queue.push({ ...payload, seq: this.nextSeq++ });
    if (this.queue.length >= this.batchSize) this.kick();
  }

  private isSettled(target: number): boolean {
    const head = this.queue[0];
    return head === undefined || head.seq >= target;
  }

  private hasDueWork(): boolean {
    const head = this.queue[0];
    if (head === undefined || this.cancel.signal.aborted) return false;
    return this.queue.length >= this.batchSize || head.seq < this.dueBefore;
  }

  private async settledOrDeadline(target: number, deadline: number): Promise<void> {
    this.dueBefore = Math.max(this.dueBefore, target);
    this.kick();
    while (!this.isSettled(target) && Date.now() < deadline && !this.cancel.signal.aborted) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(1, deadline - Date.now()));
        this.waiters.add(wake);
      });
      this.kick();
    }
  }

  private result(target: number): FlushResult {
    const settled = this.isSettled(target);
    const rejected: MlflowRejectedEntryError[] = [];
    for (let i = 0; i < this.refusals.length;) {
      const refusal = this.refusals[i] as { seq: number; error: MlflowRejectedEntryError };
      if (refusal.seq < target) {
        rejected.push(refusal.error);
        this.refusals.splice(i, 1);
      } else i++;
    }
    const delivered = settled && rejected.length === 0;
    return {
      delivered,
      timedOut: !settled,
      pending: this.queue.length,
      unconfirmed: Math.min(this.queue.length, Math.max(this.inFlight, this.unknownOutcome)),
      rejected,
      ...(!delivered && this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  private kick(): void {
    if (this.sending || !this.hasDueWork()) return;
    this.sending = this.drain().then(
      () => {
        this.sending = undefined;
        this.notify();
        this.kick();
      },
      (err: unknown) => {
        // Not expected (settle handles every delivery error); the next tick tries again.
        this.sending = undefined;
        this.lastError = errorMessage(err);
        this.report(asError(err), 0);
        this.notify();
      },
    );
  }

  private notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  private report(err: Error, attempt: number): void {
    try {
      this.opts.onError?.(err, attempt);
    } catch {
      // a failing callback must not stop delivery
    }
  }

  private async drain(): Promise<void> {
    while (this.hasDueWork()) {
      if (!(await this.settle(this.queue.slice(0, headThatFits(this.queue, this.batchSize))))) return;
    }
  }

  /** Replaces `batch`, the head of the queue, by `keep` (a part of it) and returns `keep`. */
  private narrow(batch: Entry[], keep: Entry[]): Entry[] {
    this.queue.splice(0, batch.length, ...keep);
    this.notify();
    return keep;
  }

  /**
   * Delivers `batch`, the head of the queue, and takes it off the queue; entries MLflow refuses for
   * good are isolated and dropped. False only when close() cancelled it (the rest stays queued).
   */
  private async settle(initial: Entry[]): Promise<boolean> {
    let batch = initial;
    let backoff = this.opts.initialBackoffMs ?? 200;
    const signal = this.cancel.signal;
    for (let attempt = 1; batch.length > 0; attempt++) {
      let error: Error;
      try {
        this.inFlight = batch.length;
        await this.client.logBatch(this.runId, contentOf(batch), { signal });
        this.unknownOutcome = 0;
        this.lastError = undefined;
        this.narrow(batch, []);
        return true;
      } catch (err) {
        error = asError(err);
      } finally {
        this.inFlight = 0;
      }
      if (signal.aborted) {
        this.unknownOutcome = batch.length; // abandoned mid-request: it may have been applied
        // Keep the failure that kept the batch pending: the cancellation itself says nothing about the server.
        const before = this.lastError;
        this.lastError =
          `no answer before close()'s deadline; the request was abandoned (${error.message})` +
          (before ? `; the failure before it: ${before}` : '');
        return false;
      }
      let maybeApplied = !(error instanceof MlflowNetworkError && error.delivered === false);
      let lastError = error.message;
      if (isRefusal(error)) {
        // MLflow checks a request before it writes any of it: nothing of this attempt was applied.
        maybeApplied = false;
        const diagnosis = await diagnoseRefusal(this.client, this.runId, batch, error, signal);
        if (signal.aborted) return false;
        if (diagnosis.verdict === 'conflicts') {
          for (const [entry, reason] of diagnosis.entries) this.reject(entry, reason, error, attempt);
          batch = this.narrow(
            batch,
            batch.filter((e) => !diagnosis.entries.has(e)),
          );
          continue;
        }
        if (diagnosis.verdict === 'isolate') {
          if (batch.length > 1) {
            const half = Math.ceil(batch.length / 2);
            return (await this.settle(batch.slice(0, half))) && (await this.settle(batch.slice(half)));
          }
          this.reject(batch[0] as Entry, error.message, error, attempt);
          this.narrow(batch, []);
          return true;
        }
        // The run itself is unavailable or unreadable: keep everything and retry.
        lastError = `${error.message} (${diagnosis.reason}; retrying)`;
      }
      this.failures++;
      this.lastError = lastError;
      this.report(error, attempt);
      if (maybeApplied) this.unknownOutcome = batch.length;
      if (!(await sleepUnlessAborted(backoff, signal))) return false;
      backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 5000);
      if (maybeApplied) {
        // The read-back failed too: the whole batch is sent again rather than risk losing a point (MLflow's SQL
        // store ignores an exact duplicate point, so a repeat costs at most a request).
        const onServer = await metricsOnServer(this.client, this.runId, batch, signal).catch(() => undefined);
        if (signal.aborted) return false;
        if (onServer) {
          batch = this.narrow(
            batch,
            batch.filter((e) => e.kind !== 'metric' || !onServer.has(metricId(e.metric))),
          );
          this.unknownOutcome = 0;
        }
      }
    }
    return true;
  }

  private reject(entry: Entry, reason: string, cause: Error, attempt: number): void {
    const error = rejectionOf(entry, reason, cause);
    if (this.refusals.length >= MAX_KEPT_REFUSALS) this.refusals.shift();
    this.refusals.push({ seq: entry.seq, error });
    this.report(error, attempt);
  }
}
