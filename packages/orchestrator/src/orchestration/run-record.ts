import type { Redis } from 'ioredis';
import { keyPrefix, RUN_KEYS_TTL_S } from '@lits-ddp/protocol';

/**
 * What a coordinator must know to take over a run whose coordinator died: the seeds actually used
 * (random mode draws them), where it is tracked, and how far it got. A Redis hash
 * `{prefix}:run:{runId}:record`, written before anything a restart could duplicate.
 */
export interface RunRecord {
  seeds: { data: number; model: number };
  tracker?: { kind: 'mlflow' | 'local'; runId: string; location: string };
  phase: 'preparing' | 'training' | 'finishing' | 'done';
  /** The experiment result once `phase` is done (JSON of ExperimentResult). */
  result?: string;
}

export const runRecordKey = (runId: string): string => `${keyPrefix()}:run:${runId}:record`;

export async function loadRunRecord(redis: Redis, runId: string): Promise<RunRecord | undefined> {
  const h = await redis.hgetall(runRecordKey(runId));
  if (!h.seeds || !h.phase) return undefined;
  try {
    return {
      seeds: JSON.parse(h.seeds) as RunRecord['seeds'],
      phase: h.phase as RunRecord['phase'],
      ...(h.tracker ? { tracker: JSON.parse(h.tracker) as NonNullable<RunRecord['tracker']> } : {}),
      ...(h.result ? { result: h.result } : {}),
    };
  } catch {
    return undefined;
  }
}

export async function saveRunRecord(redis: Redis, runId: string, patch: Partial<RunRecord>): Promise<void> {
  const fields: Record<string, string> = {};
  if (patch.seeds) fields.seeds = JSON.stringify(patch.seeds);
  if (patch.tracker) fields.tracker = JSON.stringify(patch.tracker);
  if (patch.phase) fields.phase = patch.phase;
  if (patch.result) fields.result = patch.result;
  const key = runRecordKey(runId);
  // Kept while the run lives (runs may last longer than the TTL); readable for a week once done.
  const tx = redis.multi().hset(key, fields);
  await (patch.phase === 'done' ? tx.expire(key, RUN_KEYS_TTL_S) : tx.persist(key)).exec();
}
