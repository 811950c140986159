// Runs in a worker thread so heartbeats keep flowing while the main thread is inside a long,
// synchronous tfjs kernel. It owns its own Redis connection.
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

interface HeartbeatConfig {
  redisUrl: string;
  key: string;
  intervalMs: number;
  ttlMs: number;
}

const config = workerData as HeartbeatConfig;
const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: false });
redis.on('error', () => undefined); // reconnects on its own; a missed beat is what the coordinator watches

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
