// npm run bench: all-reduce of the seed model's gradient (2,339,491 fp32) with N = 2, 3, 4 rank processes.
// Progress goes to stderr; the last stdout line is one JSON object.
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { RedisServer } from '@lits-ddp/local-services';
import { cleanupRun, DEFAULT_CHUNK_BYTES } from '../dist/index.js';

const GRADIENT_VALUES = 2_339_491;
const reps = Number(process.env.LITS_BENCH_REPS ?? 9);
const chunkBytes = Number(process.env.LITS_BENCH_CHUNK_BYTES ?? DEFAULT_CHUNK_BYTES);
const worldSizes = (process.env.LITS_BENCH_N ?? '2,3,4').split(',').map(Number);
const log = (m) => process.stderr.write(`[bench] ${m}\n`);
const loadAtStart = loadavg()[0];

const server = process.env.REDIS_URL ? undefined : await RedisServer.start();
const url = process.env.REDIS_URL ?? server.url;
log(
  `redis ${url}${server ? ' (dedicated)' : ''}; ${reps} repetitions; chunk ${chunkBytes} bytes; load ${loadavg()[0].toFixed(2)}`,
);

function runRanks(n) {
  const runId = `bench-n${n}-${Date.now()}`;
  const lines = [];
  const children = Array.from({ length: n }, (_, rank) => {
    const cfg = { rank, worldSize: n, length: GRADIENT_VALUES, chunkBytes, reps, redis: url, runId };
    const child = spawn(
      process.execPath,
      [new URL('./rank.mjs', import.meta.url).pathname, JSON.stringify(cfg)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    if (rank === 0) createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    return new Promise((resolve, reject) =>
      child.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`rank ${rank} exited with ${code}`)),
      ),
    );
  });
  return Promise.all(children).then(async () => {
    await cleanupRun({ redis: url, runId });
    return JSON.parse(lines.at(-1));
  });
}

const byN = (f) => Object.fromEntries(results.map((r) => [r.n, f(r)]));
const round = (v, d = 3) => Number(v.toFixed(d));
const results = [];
try {
  for (const n of worldSizes) {
    log(`N=${n}: starting ${n} rank processes`);
    const r = await runRanks(n);
    log(
      `N=${n}: ring ${r.ringMs.toFixed(1)} ms, exact ${r.exactMs.toFixed(1)} ms, star ${r.starMs.toFixed(1)} ms, bound ${r.boundMs.toFixed(1)} ms (${r.redisMBps.toFixed(0)} MB/s)`,
    );
    results.push(r);
  }
} finally {
  await server?.dispose();
}
process.stdout.write(
  `${JSON.stringify({
    gradientValues: GRADIENT_VALUES,
    chunkBytes,
    reps,
    cpus: cpus().length,
    loadAverage: { start: round(loadAtStart, 2), end: round(loadavg()[0], 2) },
    ringOverBound: byN((r) => round(r.ringOverBound)),
    exactOverRing: byN((r) => round(r.exactOverRing)),
    starOverRing: byN((r) => round(r.starOverRing)),
    ringMs: byN((r) => round(r.ringMs, 1)),
    exactMs: byN((r) => round(r.exactMs, 1)),
    starMs: byN((r) => round(r.starMs, 1)),
    boundMs: byN((r) => round(r.boundMs, 1)),
    redisMBps: byN((r) => round(r.redisMBps, 0)),
    rankCpuMs: byN((r) => Object.fromEntries(Object.entries(r.rankCpuMs).map(([k, v]) => [k, round(v, 1)]))),
    ringBytesMovedThroughRedis: byN((r) => r.ringBytesMovedThroughRedis),
  })}\n`,
);
