import type { Redis } from 'ioredis';
import { decodeJson, runKeys, RunPlan, type RunEvent } from '@lits-ddp/protocol';
import type { RunTracker } from '../tracking/run-tracker.js';
import { readEventRange } from './run-events.js';
import type { RunLedger } from './run-ledger.js';

export interface RunReplay {
  redis: Redis;
  runId: string;
  ledger: RunLedger;
  tracker: RunTracker;
  onEvent?: (event: RunEvent, streamId: string) => void;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/**
 * Replays a run's whole event stream into `ledger` (and onEvent, as the live supervisor hands them), then gives the
 * tracker the metric points it does not hold yet (checked against what it already has, so each is logged once).
 * Returns the id of the last stream entry read ('0' for an empty stream): where following the run goes on.
 */
export async function replayRunStream(r: RunReplay): Promise<string> {
  let lastEventId = '0';
  for (let from = '-'; ;) {
    const page = await readEventRange(r.redis, r.runId, from, 1000);
    for (const { id, event } of page.events) {
      r.onEvent?.(event, id);
      r.ledger.apply(event);
    }
    if (page.lastId) lastEventId = page.lastId;
    if (!page.full) break;
    from = `(${lastEventId}`;
  }
  const points = r.ledger.metricPoints;
  const held = await r.tracker.loggedMetricSteps(new Set([...points.values()].map((p) => p.key)));
  const missing = [...points.entries()].filter(([at]) => !held.has(at));
  const byStep = new Map<number, Record<string, number>>();
  for (const [, p] of missing) {
    const metrics = byStep.get(p.step) ?? {};
    metrics[p.key] = p.value;
    byStep.set(p.step, metrics);
  }
  for (const [step, metrics] of [...byStep].sort((a, b) => a[0] - b[0])) r.tracker.logMetrics(metrics, step);
  r.log?.(
    'info',
    `adopting run ${r.runId}: ${points.size} metric points in the stream, ${missing.length} re-delivered`,
  );
  return lastEventId;
}

/** Where an adopted run stands: not started, over, running its plan's generation, or stopped while starting it. */
export type Adoption =
  | { kind: 'fresh' }
  | { kind: 'done'; plan: RunPlan }
  | { kind: 'follow'; plan: RunPlan }
  | { kind: 'restart'; plan: RunPlan; reason: string };

/**
 * Takes over a run whose supervisor died: replays its stream (replayRunStream) and decides from its plan how
 * to go on. A generation whose `running` status is not in the stream may not have had all its ranks assigned.
 */
export async function adoptRun(r: RunReplay): Promise<{ lastEventId: string; adoption: Adoption }> {
  const rawPlan = await r.redis.get(runKeys.plan(r.runId));
  const lastEventId = await replayRunStream(r);
  if (!rawPlan) return { lastEventId, adoption: { kind: 'fresh' } };
  const plan = decodeJson(RunPlan, rawPlan, `run plan ${runKeys.plan(r.runId)}`);
  const { ledger } = r;
  if (ledger.terminal) return { lastEventId, adoption: { kind: 'done', plan } };
  const confirmed = ledger.lastStatus?.status === 'running' && ledger.generation === plan.generation;
  const reason = `the coordinator stopped while generation ${plan.generation} was starting`;
  return { lastEventId, adoption: confirmed ? { kind: 'follow', plan } : { kind: 'restart', plan, reason } };
}
