import type { Redis } from 'ioredis';
import {
  checkJson,
  decodeJson,
  runKeys,
  RunRecordHash,
  RunSeeds,
  RunTrackerRef,
  RUN_KEYS_TTL_S,
  type RunRecordPhase,
} from '@lits-ddp/protocol';

/**
 * What a coordinator must know to take over a run whose coordinator died: the seeds actually used
 * (random mode draws them), where it is tracked, and how far it got. A Redis hash
 * (`runKeys.record`), written before anything a restart could duplicate.
 */
export interface RunRecord {
  seeds: RunSeeds;
  tracker?: RunTrackerRef;
  phase: RunRecordPhase;
  /** The experiment result once `phase` is done (JSON of ExperimentResult). */
  result?: string;
}

/**
 * The run's record, or undefined when it has none (a run that never started, or whose record
 * expired). A record that is there but does not decode is an error naming the key: treating it as
 * absent would start the run again with new seeds and a second tracking run.
 */
export async function loadRunRecord(redis: Redis, runId: string): Promise<RunRecord | undefined> {
  const key = runKeys.record(runId);
  const hash = await redis.hgetall(key);
  if (Object.keys(hash).length === 0) return undefined;
  const fields = checkJson(RunRecordHash, hash, `run record ${key}`);
  return {
    seeds: decodeJson(RunSeeds, fields.seeds, `run record ${key}, field seeds`),
    phase: fields.phase,
    ...(fields.tracker !== undefined
      ? { tracker: decodeJson(RunTrackerRef, fields.tracker, `run record ${key}, field tracker`) }
      : {}),
    ...(fields.result !== undefined ? { result: fields.result } : {}),
  };
}

export async function saveRunRecord(redis: Redis, runId: string, patch: Partial<RunRecord>): Promise<void> {
  const fields: Record<string, string> = {};
  if (patch.seeds) fields.seeds = JSON.stringify(patch.seeds);
  if (patch.tracker) fields.tracker = JSON.stringify(patch.tracker);
  if (patch.phase) fields.phase = patch.phase;
  if (patch.result) fields.result = patch.result;
  const key = runKeys.record(runId);
  // Kept while the run lives (runs may last longer than the TTL); readable for a week once done.
  const tx = redis.multi().hset(key, fields);
  await (patch.phase === 'done' ? tx.expire(key, RUN_KEYS_TTL_S) : tx.persist(key)).exec();
}
