// Runs in a worker thread so heartbeats keep flowing while the main thread is inside a long,
// synchronous tfjs kernel. It owns its own Redis connection.
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

/**
 * The connection's events, relayed to the main thread: a thread has its own module instances, so the process's
 * outage tracker (which logs an outage once for every connection of the process) lives over there.
 */
export type HeartbeatRedisEvent = { redis: 'error'; message: string; code?: string } | { redis: 'ready' };

interface HeartbeatConfig {
  redisUrl: string;
  key: string;
  intervalMs: number;
  ttlMs: number;
}

const config = workerData as HeartbeatConfig;
const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: false });
// It reconnects on its own; a missed beat is what the coordinator watches.
const relay = (event: HeartbeatRedisEvent): void => parentPort?.postMessage(event);
redis.on('error', (err: NodeJS.ErrnoException) =>
  relay({ redis: 'error', message: err.message, ...(err.code ? { code: err.code } : {}) }),
);
redis.on('ready', () => relay({ redis: 'ready' }));

const beat = (): void => {
  redis.set(config.key, String(Date.now()), 'PX', config.ttlMs).catch(() => undefined);
};
beat();
const timer = setInterval(beat, config.intervalMs);

parentPort?.on('message', (msg: unknown) => {
  if (msg === 'stop') {
    clearInterval(timer);
    redis
      .del(config.key)
      .catch(() => undefined)
      .finally(() => {
        redis.disconnect();
        parentPort?.close();
      });
  }
});
