import type { Redis } from 'ioredis';
import type { RunEvent } from '@lits-ddp/protocol';
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
