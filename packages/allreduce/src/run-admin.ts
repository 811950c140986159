import type { Redis } from 'ioredis';
import {
  CollectiveKeys,
  encodeAbortRecord,
  keyPrefix as defaultPrefix,
  validateRunId,
  type AbortOrigin,
} from '@lits-ddp/protocol';
import {
  describeEndpoint,
  openConnection,
  refuseCluster,
  replyWithin,
  waitReady,
  type CommandDeadline,
} from './connections.js';
import { CollectiveOptionsError } from './errors.js';
import type { RedisEndpoint } from './options.js';

/** Which run (and Redis instances) an outside party such as the coordinator acts on. */
export interface RunTarget {
  redis: RedisEndpoint | readonly RedisEndpoint[];
  runId: string;
  keyPrefix?: string;
  /** How long to wait for each Redis connection. Default 10 s. */
  connectTimeoutS?: number;
  /** How long to wait for the reply to each command (SET, SCAN, UNLINK). Default 10 s. */
  commandTimeoutS?: number;
}

const unlinkLabel = (keys: string[]): string =>
  `UNLINK ${keys[0]}${keys.length > 1 ? ` (and ${keys.length - 1} more keys)` : ''}`;

/** Deletes every key matching `pattern` (SCAN + UNLINK); returns how many were deleted. */
export async function scanDelete(conn: Redis, pattern: string, d: CommandDeadline): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await replyWithin(
      conn.scan(cursor, 'MATCH', pattern, 'COUNT', 1000),
      `SCAN ${pattern}`,
      d,
    );
    cursor = next;
    if (keys.length > 0) deleted += await replyWithin(conn.unlink(...keys), unlinkLabel(keys), d);
  } while (cursor !== '0');
  return deleted;
}

function secondsOf(value: number | undefined, field: string, fallback: number): number {
  const s = value ?? fallback;
  if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) {
    throw new CollectiveOptionsError(
      `RunTarget.${field}`,
      `RunTarget.${field} must be a positive number of seconds (got ${JSON.stringify(value)})`,
    );
  }
  return s * 1000;
}

interface AdminConnection {
  conn: Redis;
  deadline: CommandDeadline;
}

async function withConnections<T>(
  t: RunTarget,
  caller: string,
  fn: (conns: AdminConnection[]) => Promise<T>,
): Promise<T> {
  validateRunId(t.runId);
  const connectMs = secondsOf(t.connectTimeoutS, 'connectTimeoutS', 10);
  const commandMs = secondsOf(t.commandTimeoutS, 'commandTimeoutS', 10);
  const endpoints = (Array.isArray(t.redis) ? t.redis : [t.redis]) as RedisEndpoint[];
  const errors: (Error | undefined)[] = endpoints.map(() => undefined);
  const conns = endpoints.map((e, i) =>
    openConnection(e, undefined, (err) => {
      errors[i] = err;
    }),
  );
  try {
    const admin = conns.map((conn, i) => ({
      conn,
      deadline: { caller, redis: describeEndpoint(endpoints[i] as RedisEndpoint), ms: commandMs },
    }));
    await Promise.all(
      admin.map(async ({ conn, deadline }, i) => {
        await waitReady(conn, deadline.redis, connectMs, () => errors[i]);
        await refuseCluster(conn, `RunTarget.redis[${i}]`, deadline);
      }),
    );
    return await fn(admin);
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
  const ttlMs = Math.round(secondsOf(t.ttlS, 'ttlS', 3600));
  return withConnections(t, 'abortRun', async ([first]) => {
    const { conn, deadline } = first as AdminConnection;
    const set = await replyWithin(
      conn.set(keys.abort, record, 'PX', ttlMs, 'NX'),
      `SET ${keys.abort}`,
      deadline,
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
  return withConnections(t, 'cleanupRun', async (conns) => {
    let deleted = 0;
    for (const { conn, deadline } of conns) deleted += await scanDelete(conn, pattern, deadline);
    return deleted;
  });
}
