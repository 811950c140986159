// Load benchmark of the REST API: a burst of 200 concurrent POST /v1/experiments (20 of them
// repeating an idempotency key) and a sustained phase, against a real Redis, over real HTTP.
// Progress goes to stderr; the last stdout line is one JSON object.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { RedisServer } from '@lits-ddp/local-services';

const TOKEN = 'bench-token-0123456789abcdef';
const log = (m) => process.stderr.write(`${m}\n`);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const stats = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  const r = (v) => Math.round(v * 100) / 100;
  return { n: s.length, p50Ms: r(pct(s, 50)), p99Ms: r(pct(s, 99)), maxMs: r(s.at(-1)) };
};

process.env.LITS_KEY_PREFIX = `bench-${process.pid}`;
let redisServer;
let redisUrl = process.env.REDIS_URL;
if (!redisUrl) {
  redisServer = await RedisServer.start();
  redisUrl = redisServer.url;
}
const base = await mkdtemp(join(tmpdir(), 'coord-bench-'));
await mkdir(join(base, 'data', 'ds'), { recursive: true });
const server = spawn(
  process.execPath,
  [
    fileURLToPath(new URL('./load-server.mjs', import.meta.url)),
    redisUrl,
    join(base, 'data'),
    join(base, 'home'),
    TOKEN,
  ],
  { env: { ...process.env }, stdio: ['ignore', 'pipe', 'inherit'] },
);
const url = await new Promise((resolve, reject) => {
  server.stdout.once('data', (d) => resolve(d.toString().trim()));
  server.once('exit', (code) => reject(new Error(`load server exited with ${code}`)));
});
log(`server at ${url}`);

const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
async function submit(key) {
  const t = performance.now();
  const res = await fetch(`${url}/v1/experiments`, {
    method: 'POST',
    headers: { ...headers, 'idempotency-key': key },
    body: JSON.stringify({ 'dataset-path': 'ds', gpus: 1, max_epochs: 1, 'test-epochs': 1 }),
  });
  const body = await res.json();
  return { ms: performance.now() - t, status: res.status, id: body.id };
}
async function health() {
  const t = performance.now();
  await (await fetch(`${url}/healthz`)).arrayBuffer();
  return performance.now() - t;
}

try {
  log('warm-up: 50 submissions, 50 health checks');
  for (let i = 0; i < 50; i++) await submit(`warm-${i}`);
  for (let i = 0; i < 50; i++) await health();

  log('burst: 200 concurrent submissions, 20 repeated idempotency keys');
  const keys = Array.from({ length: 180 }, (_, i) => `burst-${i}`);
  const order = [...keys];
  for (let i = 0; i < 20; i++) order.splice(i * 9 + 5, 0, keys[i]);
  const burst = await Promise.all(order.map(submit));
  const distinct = new Set(burst.map((r) => r.id)).size;
  const failed = burst.filter((r) => r.status !== 202).length;

  log('sustained: 1000 submissions, 10 at a time');
  const sustained = [];
  for (let i = 0; i < 100; i++)
    sustained.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => submit(`s-${i}-${j}`)))));
  const baseline = [];
  for (let i = 0; i < 100; i++)
    baseline.push(...(await Promise.all(Array.from({ length: 10 }, () => health()))));

  const listed = await fetch(`${url}/v1/experiments?status=queued&limit=1`, { headers });
  const queued = (await listed.json()).total;
  const burstStats = stats(burst.map((r) => r.ms));
  const sustainedStats = stats(sustained.map((r) => r.ms));
  const healthStats = stats(baseline);
  const result = {
    bench: 'coordinator-load',
    burst: {
      ...burstStats,
      concurrency: 200,
      repeatedKeys: 20,
      distinctExperiments: distinct,
      non202: failed,
    },
    sustained: { ...sustainedStats, concurrency: 10 },
    healthzBaseline: { ...healthStats, concurrency: 10 },
    p99RatioToHealthz: Math.round((sustainedStats.p99Ms / healthStats.p99Ms) * 100) / 100,
    queuedExperiments: queued,
    goalP99Ms: 50,
    node: process.version,
  };
  log(`burst p99 ${burstStats.p99Ms} ms, sustained p99 ${sustainedStats.p99Ms} ms (goal ≤ 50 ms)`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  server.kill('SIGTERM');
  await once(server, 'exit');
  await rm(base, { recursive: true, force: true });
  await redisServer?.dispose();
}
