#!/usr/bin/env node
// Container health: `coordinator` asks GET /healthz on PORT; `worker` checks that a worker registered
// from this host (the container's hostname) still heartbeats in Redis. Exit 0 healthy, 1 not.
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { workerKeys } from '@lits-ddp/protocol';

const mode = process.argv[2];
const say = (line) => process.stdout.write(`${line}\n`);

async function coordinator() {
  const url = `http://127.0.0.1:${process.env.PORT ?? '8080'}/healthz`;
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  say(`${url}: ${res.status}`);
  return res.ok;
}

async function worker() {
  if (!process.env.REDIS_URL) throw new Error('REDIS_URL is not set');
  const redis = new Redis(process.env.REDIS_URL, {
    maxRetriesPerRequest: 1,
    connectTimeout: 4000,
    lazyConnect: true,
  });
  try {
    await redis.connect();
    const host = hostname();
    for (const id of await redis.smembers(workerKeys.registry())) {
      const registeredHost = await redis.hget(workerKeys.info(id), 'host');
      if (registeredHost !== JSON.stringify(host)) continue;
      if ((await redis.exists(workerKeys.heartbeat(id))) === 1) {
        say(`worker ${id} on ${host} heartbeats`);
        return true;
      }
    }
    say(`no heartbeating worker registered from ${host}`);
    return false;
  } finally {
    redis.disconnect();
  }
}

const checks = { coordinator, worker };
if (!(mode in checks)) {
  say('usage: healthcheck.mjs coordinator|worker');
  process.exit(2);
}
checks[mode]().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err) => {
    say(`unhealthy: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
