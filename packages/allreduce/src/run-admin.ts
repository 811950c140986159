import type { Redis } from 'ioredis';
import {
  CollectiveKeys,
  encodeAbortRecord,
  keyPrefix as defaultPrefix,
  validateRunId,
  type AbortOrigin,
} from '@lits-ddp/protocol';
import { describeEndpoint, openConnection, waitReady } from './connections.js';
import type { RedisEndpoint } from './options.js';

/** Which run (and Redis instances) an outside party such as the coordinator acts on. */
export interface RunTarget {
  redis: RedisEndpoint | readonly RedisEndpoint[];
  runId: string;
  keyPrefix?: string;
  /** How long to wait for each Redis connection. Default 10 s. */
  connectTimeoutS?: number;
}

/** Deletes every key matching `pattern` (SCAN + UNLINK); returns how many were deleted. */
export async function scanDelete(conn: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await conn.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await conn.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

async function withConnections<T>(t: RunTarget, fn: (conns: Redis[]) => Promise<T>): Promise<T> {
  validateRunId(t.runId);
  const endpoints = (Array.isArray(t.redis) ? t.redis : [t.redis]) as RedisEndpoint[];
  const errors: (Error | undefined)[] = endpoints.map(() => undefined);
  const conns = endpoints.map((e, i) =>
    openConnection(e, undefined, (err) => {
      errors[i] = err;
    }),
  );
  try {
    const ms = (t.connectTimeoutS ?? 10) * 1000;
    await Promise.all(
      conns.map((c, i) => waitReady(c, describeEndpoint(endpoints[i] as RedisEndpoint), ms, () => errors[i])),
    );
    return await fn(conns);
  } finally {
    for (const c of conns) c.disconnect();
  }
}

/**
 * Aborts a run generation from outside (e.g. the coordinator): every waiter on every rank rejects within about one
 * poll interval. Returns false when the generation was already aborted (the first abort's reason is kept).
 */
export async function abortRun(
  t: RunTarget & { generation: number; reason: string; by?: AbortOrigin; ttlS?: number },
): Promise<boolean> {
  const keys = new CollectiveKeys(t.runId, t.generation, t.keyPrefix ?? defaultPrefix());
  const record = encodeAbortRecord({
    by: t.by ?? 'coordinator',
    reason: t.reason,
    at: Date.now(),
    generation: t.generation,
  });
  return withConnections(t, async ([first]) => {
    const set = await (first as Redis).set(
      keys.abort,
      record,
      'PX',
      Math.round((t.ttlS ?? 3600) * 1000),
      'NX',
    );
    return set === 'OK';
  });
}

/**
 * Removes every collective key of a run on every instance: one generation, or all of them when `generation` is
 * absent. Call it once every rank of that generation has finished or failed.
 */
export async function cleanupRun(t: RunTarget & { generation?: number }): Promise<number> {
  const prefix = t.keyPrefix ?? defaultPrefix();
  const pattern =
    t.generation === undefined
      ? CollectiveKeys.runPattern(t.runId, prefix)
      : new CollectiveKeys(t.runId, t.generation, prefix).pattern;
  return withConnections(t, async (conns) => {
    let deleted = 0;
    for (const c of conns) deleted += await scanDelete(c, pattern);
    return deleted;
  });
}
