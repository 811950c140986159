// Load benchmark of the REST API against a real Redis, over real HTTP, the app in its own process.
// Each round sends 200 concurrent GET /healthz (the same-run baseline) and then 200 concurrent
// POST /v1/experiments (20 of them repeating an idempotency key), each on its own keep-alive
// connection (bench/http-connections.mjs); the server process reports the CPU time of its event
// loop's thread over each burst, so the cost of one POST is measured where it is paid. Then a
// sustained phase: 1000 POSTs and 1000 health checks, 10 at a time.
//
//   node bench/load.mjs [--rounds N] [--profile DIR]
//
// LOAD_SERVER_NODE_ARGS='--trace-gc …' passes Node/V8 flags to the server process alone, and
// LOAD_SERVER_DIST=/abs/path/dist/index.js serves another build of this package (say, the previous
// commit's) so that two builds can be compared on the same machine minutes apart.
// --profile adds 5 more bursts of each kind (left out of the numbers) with the server's V8 CPU
// profile of them written to DIR, and their summaries (bench/cpu-profile-summary.mjs) to stderr.
// Progress goes to stderr; the last stdout line is one JSON object.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QueueEvents } from 'bullmq';
import { experimentQueueKeys } from '@lits-ddp/protocol';
import { RedisServer } from '@lits-ddp/local-services';
import { summarizeProfile } from './cpu-profile-summary.mjs';
import { openConnections, requestText } from './http-connections.mjs';

const GOALS = { postP99Ms: 50, p99RatioToHealthz: 3, loopMsPerPost: 0.2 };
const BURST = 200;
const REPEATED_KEYS = 20;
const PROFILED_BURSTS = 5;
const WARM_UP_BURSTS = 30;
const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '10' }, profile: { type: 'string' } },
});
const rounds = Number(args.rounds);
const TOKEN = 'bench-token-0123456789abcdef';
const log = (m) => process.stderr.write(`${m}\n`);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const r2 = (v) => Math.round(v * 100) / 100;
const r3 = (v) => Math.round(v * 1000) / 1000;
const stats = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, p50Ms: r2(pct(s, 50)), p99Ms: r2(pct(s, 99)), maxMs: r2(s.at(-1)) };
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
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
    // Node/V8 flags for the server only (NODE_OPTIONS refuses --cpu-prof, --trace-gc and the like).
    ...(process.env.LOAD_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    fileURLToPath(new URL('./load-server.mjs', import.meta.url)),
    redisUrl,
    join(base, 'data'),
    join(base, 'home'),
    TOKEN,
  ],
  { env: { ...process.env }, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
);
const url = await new Promise((resolve, reject) => {
  // Its first line starting http://; the rest (--trace-gc and the like) goes on to stderr.
  let seen = '';
  server.stdout.on('data', (d) => {
    if (seen === undefined) return process.stderr.write(d);
    seen += d.toString();
    const url = /^http:\/\/\S+$/m.exec(seen)?.[0];
    if (!url) return;
    process.stderr.write(seen.replace(`${url}\n`, ''));
    seen = undefined;
    resolve(url);
  });
  server.once('exit', (code) => reject(new Error(`load server exited with ${code}`)));
});
log(`server at ${url}`);

let nextId = 0;
/** One command to the server process, answered over IPC. */
function control(msg) {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    const onMessage = (reply) => {
      if (reply.id !== id) return;
      server.off('message', onMessage);
      if (reply.error) reject(new Error(reply.error));
      else resolve(reply);
    };
    server.on('message', onMessage);
    server.send({ ...msg, id });
  });
}
// BullMQ's `added` events: a submission is answered once stored, and its job is added after the burst
// settles (the queue feeder), so a POST burst's measurement lasts until every new experiment has its job.
const queueEvents = new QueueEvents(experimentQueueKeys.name, {
  connection: { url: redisUrl },
  prefix: experimentQueueKeys.prefix(),
});
await queueEvents.waitUntilReady();
const addedAt = new Map();
queueEvents.on('added', ({ jobId }) => addedAt.set(jobId, performance.now()));
/** Resolves when every one of `ids` has its job, with when the last one was added. */
async function jobsAdded(ids) {
  for (;;) {
    const missing = ids.filter((id) => !addedAt.has(id));
    if (missing.length === 0) return Math.max(...ids.map((id) => addedAt.get(id)));
    await once(queueEvents, 'added', { signal: AbortSignal.timeout(30_000) }).catch(() => {
      throw new Error(`${missing.length} stored experiments got no job in 30 s (first: ${missing[0]})`);
    });
  }
}

/**
 * Runs `burst` with the server measuring it: latencies here, loop and CPU time there. `burst` resolves
 * when its work is done: a POST burst's once every new experiment has its job (postBurst), so its cost
 * includes the adding.
 */
async function measured(burst, profile) {
  await control({ cmd: 'start', ...(profile ? { profile } : {}) });
  const { results, jobsQueuedMs } = await burst();
  const cost = await control({ cmd: 'stop' });
  return { results, jobsQueuedMs, cost };
}

const conns = await openConnections(url, BURST);
const postUrl = `${url}/v1/experiments`;
const body = JSON.stringify({ 'dataset-path': 'ds', gpus: 1, max_epochs: 1, 'test-epochs': 1 });
const postText = (key) =>
  requestText(
    'POST',
    postUrl,
    {
      authorization: `Bearer ${TOKEN}`,
      'content-type': 'application/json',
      'idempotency-key': key,
    },
    body,
  );
const healthText = requestText('GET', `${url}/healthz`, {});
/** Sends `texts` at once, the i-th on the i-th connection; each result has its latency. */
function send(texts) {
  return Promise.all(
    texts.map(async (text, i) => {
      const t = performance.now();
      const res = await conns[i].request(text);
      return { ms: performance.now() - t, status: res.status, body: res.body };
    }),
  );
}
/**
 * 200 submissions at once: 180 keys, the first 20 sent twice, each repeat spread among the others.
 * Resolves once the new experiments' jobs are in the queue too, with `jobsQueuedMs` from the first send.
 */
function postBurst(tag) {
  const keys = Array.from({ length: BURST - REPEATED_KEYS }, (_, i) => `${tag}-${i}`);
  const order = [...keys];
  for (let i = 0; i < REPEATED_KEYS; i++) order.splice(i * 9 + 5, 0, keys[i]);
  const texts = order.map(postText);
  return async () => {
    const start = performance.now();
    const results = await send(texts);
    const ids = [...new Set(results.filter((r) => r.status === 202).map(idOf))];
    return { results, jobsQueuedMs: (await jobsAdded(ids)) - start };
  };
}
const healthBurst = async () => ({ results: await send(Array.from({ length: BURST }, () => healthText)) });
const idOf = (result) => JSON.parse(result.body).id;

try {
  // Until V8 has optimized the request path: with less, its compiler threads are still busy in the
  // measured rounds (0.3 ms of CPU per POST besides the event loop's, at two warm-up bursts).
  log(`warm-up: 50 submissions and 50 health checks one at a time, ${WARM_UP_BURSTS} bursts of each`);
  for (let i = 0; i < 50; i++) await send([postText(`warm-${i}`)]);
  for (let i = 0; i < 50; i++) await send([healthText]);
  for (let i = 0; i < WARM_UP_BURSTS; i++) {
    await healthBurst();
    await postBurst(`warm-burst${i}`)();
  }

  const phase = () => ({
    ms: [],
    threadMs: 0,
    processMs: 0,
    loopMs: 0,
    n: 0,
    p99PerRound: [],
    non2xx: 0,
  });
  const post = { ...phase(), distinct: [], jobsQueuedMs: [] };
  const healthz = phase();
  const add = (into, { results, cost }) => {
    into.ms.push(...results.map((r) => r.ms));
    into.threadMs += cost.mainThreadCpuMs ?? cost.loopBusyMs;
    into.processMs += cost.processCpuMs;
    into.loopMs += cost.loopBusyMs;
    into.n += results.length;
    into.p99PerRound.push(stats(results.map((r) => r.ms)).p99Ms);
    into.non2xx += results.filter((r) => r.status >= 300).length;
  };
  const perRequest = (p) => ({
    mainThreadCpuMsPerRequest: r3(p.threadMs / p.n),
    processCpuMsPerRequest: r3(p.processMs / p.n),
    loopBusyMsPerRequest: r3(p.loopMs / p.n),
    // V8's compiler and GC helper threads (and libuv's pool): the process's CPU beyond the loop's.
    otherThreadsCpuMsPerRequest: r3((p.processMs - p.threadMs) / p.n),
  });
  for (let round = 1; round <= rounds; round++) {
    add(healthz, await measured(healthBurst));
    const burst = await measured(postBurst(`burst${round}`));
    add(post, burst);
    post.distinct.push(new Set(burst.results.map(idOf)).size);
    post.jobsQueuedMs.push(r2(burst.jobsQueuedMs));
    const threadMs = burst.cost.mainThreadCpuMs ?? burst.cost.loopBusyMs;
    log(
      `round ${round}: POST p99 ${post.p99PerRound.at(-1)} ms, healthz p99 ${healthz.p99PerRound.at(-1)} ms, ` +
        `${r3(threadMs / BURST)} ms of the event loop's thread per POST, all jobs queued after ${r2(burst.jobsQueuedMs)} ms`,
    );
  }

  let profiles;
  if (args.profile) {
    const dir = resolve(args.profile);
    await mkdir(dir, { recursive: true });
    profiles = { post: join(dir, 'post-burst.cpuprofile'), healthz: join(dir, 'healthz-burst.cpuprofile') };
    const repeat = (burst) => async () => {
      for (let i = 0; i < PROFILED_BURSTS; i++) await burst(i)();
      return { results: [] };
    };
    await measured(
      repeat(() => healthBurst),
      profiles.healthz,
    );
    await measured(
      repeat((i) => postBurst(`profiled${i}`)),
      profiles.post,
    );
    for (const [what, file] of Object.entries(profiles)) {
      const summary = await summarizeProfile(file, { perCall: BURST * PROFILED_BURSTS });
      await writeFile(file.replace(/\.cpuprofile$/, '.txt'), summary);
      log(`\n== ${what} burst profile (${file})\n${summary}`);
    }
  }

  log('sustained: 1000 submissions and 1000 health checks, 10 at a time');
  const sustained = [];
  for (let i = 0; i < 100; i++)
    sustained.push(...(await send(Array.from({ length: 10 }, (_, j) => postText(`s-${i}-${j}`)))));
  const sustainedHealth = [];
  for (let i = 0; i < 100; i++)
    sustainedHealth.push(...(await send(Array.from({ length: 10 }, () => healthText))));

  const [listed] = await send([
    requestText('GET', `${url}/v1/experiments?status=queued&limit=1`, { authorization: `Bearer ${TOKEN}` }),
  ]);
  const queued = JSON.parse(listed.body).total;
  const postStats = stats(post.ms);
  const healthStats = stats(healthz.ms);
  const ratio = r2(postStats.p99Ms / healthStats.p99Ms);
  const loopMsPerPost = perRequest(post).mainThreadCpuMsPerRequest;
  const result = {
    bench: 'coordinator-load',
    rounds,
    burst: {
      concurrency: BURST,
      post: {
        ...postStats,
        p99PerRoundMs: post.p99PerRound,
        medianRoundP99Ms: median(post.p99PerRound),
        ...perRequest(post),
        distinctExperimentsPerRound: post.distinct,
        // From a burst's first send until the last of its new experiments had its BullMQ job.
        jobsQueuedMsPerRound: post.jobsQueuedMs,
        repeatedKeysPerRound: REPEATED_KEYS,
        non2xx: post.non2xx,
      },
      healthz: {
        ...healthStats,
        p99PerRoundMs: healthz.p99PerRound,
        medianRoundP99Ms: median(healthz.p99PerRound),
        ...perRequest(healthz),
        non2xx: healthz.non2xx,
      },
      p99RatioToHealthz: ratio,
    },
    sustained: {
      concurrency: 10,
      post: stats(sustained.map((r) => r.ms)),
      healthz: stats(sustainedHealth.map((r) => r.ms)),
    },
    queuedExperiments: queued,
    goals: GOALS,
    goalsMet: {
      postP99: postStats.p99Ms <= GOALS.postP99Ms,
      p99RatioToHealthz: ratio <= GOALS.p99RatioToHealthz,
      loopMsPerPost: loopMsPerPost <= GOALS.loopMsPerPost,
    },
    ...(profiles ? { profiles } : {}),
    node: process.version,
  };
  log(
    `burst of ${BURST}: POST p50 ${postStats.p50Ms} / p99 ${postStats.p99Ms} ms, healthz p99 ${healthStats.p99Ms} ms ` +
      `(ratio ${ratio}), ${loopMsPerPost} ms of the event loop's thread per POST; goals ${JSON.stringify(result.goalsMet)}`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  for (const c of conns) c.close();
  await queueEvents.close();
  server.kill('SIGTERM');
  await once(server, 'exit');
  await rm(base, { recursive: true, force: true });
  await redisServer?.dispose();
}
