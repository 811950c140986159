// The buffered logger's queue entries, and what it does with those MLflow refuses.
import { errorMessage } from '@lits-ddp/errors';
import {
  MlflowApiError,
  MlflowParamConflictError,
  MlflowRejectedEntryError,
  MlflowValidationError,
} from './errors.js';
import type { MlflowClient } from './client.js';
import { fitValue, RequestBudget, type BatchContent } from './log-batch.js';
import { MLFLOW_LIMITS, type Metric, type Run, type Tag } from './types.js';

export type Payload =
  { kind: 'metric'; metric: Metric } | { kind: 'param'; param: Tag } | { kind: 'tag'; tag: Tag };
/** `seq` numbers entries in logging order; it never changes, even when an entry before it is dropped. */
export type Entry = Payload & { seq: number };

/** What a refused request says about its batch: some params conflict, the run is unavailable, or look further. */
export type Diagnosis =
  | { verdict: 'conflicts'; entries: Map<Entry, string> }
  | { verdict: 'isolate' }
  | { verdict: 'retry'; reason: string };

export const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
export const metricId = (m: Metric): string => `${m.key}\u0000${m.timestamp}`;
const fittedParam = (p: Tag): string => fitValue(p, MLFLOW_LIMITS.paramValueLength).value;

/** Refused for good: a 4xx that is not a rate limit, or our own check before sending. */
export function isRefusal(err: Error): boolean {
  if (err instanceof MlflowValidationError) return true;
  return err instanceof MlflowApiError && err.httpStatus >= 400 && err.httpStatus < 500 && !err.isRetryable;
}

/** How many entries from the head of `queue` fit in one log-batch request (at least one). */
export function headThatFits(queue: readonly Entry[], batchSize: number): number {
  const budget = new RequestBudget();
  let n = 0;
  for (const e of queue) {
    if (n >= batchSize) break;
    const fits =
      e.kind === 'metric'
        ? budget.tryAdd('metrics', e.metric)
        : e.kind === 'param'
          ? budget.tryAdd('params', e.param)
          : budget.tryAdd('tags', e.tag);
    if (!fits) break;
    n++;
  }
  return n;
}

export function contentOf(batch: readonly Entry[]): BatchContent {
  return {
    metrics: batch.flatMap((e) => (e.kind === 'metric' ? [e.metric] : [])),
    params: batch.flatMap((e) => (e.kind === 'param' ? [e.param] : [])),
    tags: batch.flatMap((e) => (e.kind === 'tag' ? [e.tag] : [])),
  };
}

/** Why MLflow refused `batch`: a conflicting param, the run itself, or something to isolate. */
export async function diagnoseRefusal(
  client: MlflowClient,
  runId: string,
  batch: readonly Entry[],
  error: Error,
  signal: AbortSignal,
): Promise<Diagnosis> {
  const params = batch.filter((e): e is Entry & { kind: 'param' } => e.kind === 'param');
  const entries = new Map<Entry, string>();
  if (error instanceof MlflowParamConflictError) {
    // Found by the client before sending: every queued value of that key but the logged one.
    for (const e of params) {
      if (e.param.key === error.key && fittedParam(e.param) !== error.loggedValue)
        entries.set(e, `already logged as "${error.loggedValue}"; MLflow params cannot change`);
    }
    return entries.size > 0 ? { verdict: 'conflicts', entries } : { verdict: 'isolate' };
  }
  let run: Run;
  try {
    run = await client.getRun(runId, { signal });
  } catch (err) {
    return { verdict: 'retry', reason: `run ${runId} unreadable: ${errorMessage(err)}` };
  }
  if (run.info.lifecycleStage !== 'active')
    return { verdict: 'retry', reason: `run ${runId} is ${run.info.lifecycleStage}` };
  const logged = new Map(run.data.params.map((p) => [p.key, p.value]));
  for (const e of params) {
    const before = logged.get(e.param.key);
    if (before !== undefined && before !== fittedParam(e.param))
      entries.set(e, `already logged on the server as "${before}"; MLflow params cannot change`);
  }
  return entries.size > 0 ? { verdict: 'conflicts', entries } : { verdict: 'isolate' };
}

export function rejectionOf(entry: Entry, reason: string, cause: Error): MlflowRejectedEntryError {
  const options = { cause };
  if (entry.kind === 'metric') {
    const m = entry.metric;
    return new MlflowRejectedEntryError('metric', m.key, m.value, reason, m.step, options);
  }
  const { key, value } = entry.kind === 'param' ? entry.param : entry.tag;
  return new MlflowRejectedEntryError(entry.kind, key, value, reason, undefined, options);
}

/** (key, timestamp) of the metrics of `batch` the server already holds. */
export async function metricsOnServer(
  client: MlflowClient,
  runId: string,
  batch: readonly Entry[],
  signal: AbortSignal,
): Promise<Set<string>> {
  const keys = new Set(batch.flatMap((e) => (e.kind === 'metric' ? [e.metric.key] : [])));
  const onServer = new Set<string>();
  for (const key of keys) {
    for (const m of await client.getMetricHistory(runId, key, { signal })) onServer.add(metricId(m));
  }
  return onServer;
}

/** Resolves true after `ms`, false at once when `signal` aborts; leaves no listener behind. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Waits for `promise`, but no longer than `ms`. */
export async function raceDelay(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
