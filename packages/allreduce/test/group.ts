// Test harness: N communicators of one run generation in this process, plus deterministic inputs.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { CounterRng } from '@lits-ddp/counter-rng';
import { Communicator, type CommunicatorOptions } from '../src/index.js';

export type GroupOptions = Omit<
  CommunicatorOptions,
  'rank' | 'worldSize' | 'runId' | 'generation' | 'redis'
> & {
  runId?: string;
  generation?: number;
};

export function newRunId(tag: string): string {
  return `test-${tag}-${randomUUID().slice(0, 8)}`;
}

export async function openGroup(
  redis: CommunicatorOptions['redis'],
  worldSize: number,
  options: GroupOptions = {},
): Promise<Communicator[]> {
  const runId = options.runId ?? newRunId('group');
  const generation = options.generation ?? 0;
  return Promise.all(
    Array.from({ length: worldSize }, (_, rank) =>
      Communicator.connect({ ...options, redis, runId, generation, rank, worldSize }),
    ),
  );
}

export async function closeGroup(group: readonly Communicator[]): Promise<void> {
  await Promise.all(group.map((c) => c.close()));
}

/** Every key of a run in one Redis (SCAN), with its remaining TTL in ms. */
export async function runKeys(url: string, runId: string): Promise<Map<string, number>> {
  const redis = new Redis(url);
  try {
    const out = new Map<string, number>();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${runId}*`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) out.set(k, await redis.pttl(k));
    } while (cursor !== '0');
    return out;
  } finally {
    redis.disconnect();
  }
}

/** Values spanning many magnitudes, both signs, with zeros, denormals and large values. */
export function wideValues(rng: CounterRng, length: number, maxExponent = 100): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const kind = rng.int(16);
    const sign = rng.int(2) === 0 ? -1 : 1;
    if (kind === 0) out[i] = 0;
    else if (kind === 1)
      out[i] = sign * rng.int(1 << 20) * 2 ** -149; // denormals
    else if (kind === 2) out[i] = sign * (1 + rng.float64()) * 2 ** (maxExponent - rng.int(8));
    else out[i] = sign * (1 + rng.float64()) * 2 ** (rng.int(2 * maxExponent) - maxExponent);
  }
  return out;
}

/** Uniform values in [-1, 1) scaled by a per-block magnitude, like a gradient. */
export function gradientLike(rng: CounterRng, length: number): Float32Array {
  const out = new Float32Array(length);
  rng.fillUniform(out, -1, 1);
  for (let i = 0; i < length; i += 4096) {
    const scale = 2 ** (rng.int(24) - 16);
    for (let j = i; j < Math.min(length, i + 4096); j++) out[j] = (out[j] as number) * scale;
  }
  return out;
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

export const rngFor = (...purpose: (string | number)[]): CounterRng =>
  CounterRng.derive(20240611, 'allreduce-test', ...purpose);
