import type { RedisOptions } from 'ioredis';
import { keyPrefix, validateRunId } from '@lits-ddp/protocol';
import { CollectiveOptionsError } from './errors.js';

/** One Redis instance: a `redis://` URL or ioredis options. */
export type RedisEndpoint = string | RedisOptions;

/** Integer lanes of exact mode: int32 moves as many bytes as the fp32 ring; float64 is 2x the bytes, far finer. */
export type ExactLanes = 'int32' | 'float64';

export interface CommunicatorOptions {
  /** One instance, or several independent instances (ring edges are spread across them). */
  redis: RedisEndpoint | readonly RedisEndpoint[];
  runId: string;
  /** Bumped on every restart of the group; keys of other generations are never read. */
  generation: number;
  rank: number;
  worldSize: number;
  /** Longest a rank waits for one message before the collective fails. Default 30. */
  timeoutS?: number;
  /** Largest payload of one Redis list message. Default 1 MiB, at most 64 MiB, a multiple of 8. */
  chunkBytes?: number;
  /** TTL of every key the collectives write. Default max(60, 4 x timeoutS). */
  keyTtlS?: number;
  /** How often the abort key and the timeouts are checked. Default 200 ms. */
  pollMs?: number;
  /** Values per exponent block in exact mode (fixed, model-agnostic). Default 256. */
  exactBlockSize?: number;
  exactLanes?: ExactLanes;
  /** Key prefix; default from LITS_KEY_PREFIX or `lits`. */
  keyPrefix?: string;
}

export interface ResolvedOptions {
  endpoints: RedisEndpoint[];
  runId: string;
  generation: number;
  rank: number;
  worldSize: number;
  timeoutMs: number;
  chunkBytes: number;
  keyTtlMs: number;
  pollMs: number;
  exactBlockSize: number;
  exactLanes: ExactLanes;
  keyPrefix: string;
}

export const DEFAULT_TIMEOUT_S = 30;
export const DEFAULT_CHUNK_BYTES = 1 << 20;
export const MAX_CHUNK_BYTES = 64 << 20;
export const DEFAULT_POLL_MS = 200;
export const DEFAULT_EXACT_BLOCK_SIZE = 256;

function fail(field: string, reason: string, value: unknown): never {
  throw new CollectiveOptionsError(
    `CommunicatorOptions.${field}`,
    `CommunicatorOptions.${field} ${reason} (got ${JSON.stringify(value)})`,
  );
}

function integerIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(field, `must be an integer in [${min}, ${max}]`, value);
  }
  return value;
}

function positive(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(field, 'must be a positive number', value);
  }
  return value;
}

function endpointsOf(redis: unknown): RedisEndpoint[] {
  const list = Array.isArray(redis) ? (redis as unknown[]) : [redis];
  if (list.length === 0) fail('redis', 'must name at least one Redis instance', redis);
  return list.map((e, i) => {
    if (typeof e === 'string') {
      if (!/^rediss?:\/\//.test(e)) fail(`redis[${i}]`, 'must be a redis:// or rediss:// URL', e);
      return e;
    }
    if (typeof e === 'object' && e !== null) return e as RedisOptions;
    return fail(`redis[${i}]`, 'must be a URL string or ioredis options', e);
  });
}

export function resolveOptions(o: CommunicatorOptions): ResolvedOptions {
  const worldSize = integerIn(o.worldSize, 'worldSize', 1, 4096);
  const rank = integerIn(o.rank, 'rank', 0, worldSize - 1);
  const timeoutS = positive(o.timeoutS ?? DEFAULT_TIMEOUT_S, 'timeoutS');
  const chunkBytes = integerIn(o.chunkBytes ?? DEFAULT_CHUNK_BYTES, 'chunkBytes', 64, MAX_CHUNK_BYTES);
  if (chunkBytes % 8 !== 0) fail('chunkBytes', 'must be a multiple of 8', chunkBytes);
  const keyTtlS = positive(o.keyTtlS ?? Math.max(60, 4 * timeoutS), 'keyTtlS');
  if (keyTtlS < timeoutS) fail('keyTtlS', `must be at least timeoutS (${timeoutS})`, keyTtlS);
  const lanes = o.exactLanes ?? 'int32';
  if (lanes !== 'int32' && lanes !== 'float64') fail('exactLanes', 'must be "int32" or "float64"', lanes);
  const prefix = o.keyPrefix ?? keyPrefix();
  if (!/^[A-Za-z0-9._-]+$/.test(prefix)) fail('keyPrefix', 'must match [A-Za-z0-9._-]+', prefix);
  validateRunId(o.runId, 'CommunicatorOptions.runId');
  return {
    endpoints: endpointsOf(o.redis),
    runId: o.runId,
    generation: integerIn(o.generation, 'generation', 0, 2 ** 31 - 1),
    rank,
    worldSize,
    timeoutMs: Math.round(timeoutS * 1000),
    chunkBytes,
    keyTtlMs: Math.round(keyTtlS * 1000),
    pollMs: integerIn(o.pollMs ?? DEFAULT_POLL_MS, 'pollMs', 10, 5000),
    exactBlockSize: integerIn(o.exactBlockSize ?? DEFAULT_EXACT_BLOCK_SIZE, 'exactBlockSize', 1, 1 << 24),
    exactLanes: lanes,
    keyPrefix: prefix,
  };
}
