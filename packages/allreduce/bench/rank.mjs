// One benchmark rank (a separate process): times ring, exact and star all-reduce and the Redis bound, interleaved.
// Prints one JSON line (rank 0 only) with per-phase medians of the slowest rank.
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { CounterRng } from '@lits-ddp/counter-rng';
import { CollectiveKeys } from '@lits-ddp/protocol';
import { Communicator } from '../dist/index.js';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const { rank, worldSize: n, length, chunkBytes, reps, redis: url, runId } = cfg;
const keys = new CollectiveKeys(runId, 0);
const ttlMs = 600_000;
const log = (m) => process.stderr.write(`[bench N=${n} rank ${rank}] ${m}\n`);

const comm = await Communicator.connect({
  redis: url,
  runId,
  generation: 0,
  rank,
  worldSize: n,
  chunkBytes,
  timeoutS: 120,
});
const push = new Redis(url);
const pop = new Redis(url);

const x = CounterRng.derive(1, 'bench-gradient', rank).fillUniform(new Float32Array(length), -1, 1);
const bytes = (a, start, end) => Buffer.from(a.buffer, a.byteOffset + start * 4, (end - start) * 4);
const perChunk = chunkBytes / 4;
const chunks = Math.ceil(length / perChunk);

/** Pushes count chunk-sized buffers and pops them back, both pipelined, on two connections. */
async function bound(count) {
  const key = keys.scratch('bound', rank);
  const payload = Buffer.alloc(chunkBytes, rank);
  const pops = Array.from({ length: count }, () => pop.blpopBuffer(key, 60));
  const pushes = Array.from({ length: count }, () =>
    push.multi().rpush(key, payload).pexpire(key, ttlMs).exec(),
  );
  await Promise.all([...pushes, ...pops]);
  return 2 * count * chunkBytes;
}

/** Star peer: ranks push their whole gradient to rank 0, which sums chunk by chunk and pushes each result chunk back. */
async function star() {
  const range = (j) => [j * perChunk, Math.min(length, (j + 1) * perChunk)];
  if (rank !== 0) {
    const up = keys.scratch('star-up', rank);
    const down = keys.scratch('star-down', rank);
    const pops = Array.from({ length: chunks }, () => pop.blpopBuffer(down, 60));
    const pushes = [];
    for (let j = 0; j < chunks; j++) {
      const [a, b] = range(j);
      pushes.push(
        push
          .multi()
          .rpush(up, bytes(x, a, b))
          .pexpire(up, ttlMs)
          .exec(),
      );
    }
    const out = new Float32Array(length);
    for (let j = 0; j < chunks; j++) {
      const reply = await pops[j];
      new Uint8Array(out.buffer).set(reply[1], range(j)[0] * 4);
    }
    await Promise.all(pushes);
    return out;
  }
  const acc = x.slice();
  const pops = [];
  for (let j = 0; j < chunks; j++) {
    for (let s = 1; s < n; s++) pops.push(pop.blpopBuffer(keys.scratch('star-up', s), 60));
  }
  const pushes = [];
  for (let j = 0; j < chunks; j++) {
    const [a, b] = range(j);
    for (let s = 1; s < n; s++) {
      const reply = await pops[j * (n - 1) + s - 1];
      const buf = Buffer.from(reply[1]);
      const part = new Float32Array(buf.buffer, buf.byteOffset, b - a);
      for (let i = 0; i < part.length; i++) acc[a + i] += part[i];
    }
    for (let s = 1; s < n; s++) {
      const down = keys.scratch('star-down', s);
      pushes.push(
        push
          .multi()
          .rpush(down, bytes(acc, a, b))
          .pexpire(down, ttlMs)
          .exec(),
      );
    }
  }
  await Promise.all(pushes);
  return acc;
}

// The ring's pushes per rank, for the bound phase to move the same volume.
await comm.allReduce(x);
const ringSent = comm.stats().operations.allReduce.bytesSent;
const boundCount = Math.max(1, Math.round(ringSent / chunkBytes));

// Like a training worker, both modes write into a reused result buffer.
const out = new Float32Array(length);
const phases = {
  bound: () => bound(boundCount),
  ring: () => comm.allReduce(x, { out }),
  exact: () => comm.allReduceExact([x], { totalContributions: n, out }),
  star: () => star(),
};
const times = { bound: [], ring: [], exact: [], star: [] };
const cpu = { bound: [], ring: [], exact: [], star: [] };
for (let rep = -1; rep < reps; rep++) {
  for (const [name, run] of Object.entries(phases)) {
    await comm.barrier();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    if (rep >= 0) {
      times[name].push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[name].push((c.user + c.system) / 1000);
    }
  }
  if (rank === 0) log(`rep ${rep + 1}/${reps}`);
}

const all = (await comm.allGather(Buffer.from(JSON.stringify(times)))).map((b) => JSON.parse(b.toString()));
const cpus = (await comm.allGather(Buffer.from(JSON.stringify(cpu)))).map((b) => JSON.parse(b.toString()));
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
// CPU time of one rank process per collective (median over repetitions, mean over ranks).
const cpuMs = (name) => cpus.reduce((a, c) => a + median(c[name]), 0) / n;
// Per repetition the slowest rank counts (a collective is done when its last rank is done).
const slowestPerRep = (name) =>
  Array.from({ length: reps }, (_, i) => Math.max(...all.map((t) => t[name][i])));
const ringBytes = (await comm.allGather(Buffer.from(String(ringSent)))).reduce(
  (a, b) => a + Number(b.toString()),
  0,
);
if (rank === 0) {
  const moved = 2 * ringBytes; // every pushed byte is popped once
  const boundBytes = n * 2 * boundCount * chunkBytes;
  // The bound of each repetition: the ring's bytes at the throughput measured in that repetition.
  const bound = slowestPerRep('bound').map((ms) => (ms * moved) / boundBytes);
  const [ring, exact, star] = ['ring', 'exact', 'star'].map(slowestPerRep);
  // Ratios per repetition (the phases of one repetition run back to back, so they share the machine's load),
  // then the median: steadier than a ratio of medians on a shared machine.
  const ratio = (a, b) => median(a.map((v, i) => v / b[i]));
  process.stdout.write(
    `${JSON.stringify({
      n,
      ringMs: median(ring),
      exactMs: median(exact),
      starMs: median(star),
      boundMs: median(bound),
      ringOverBound: ratio(ring, bound),
      exactOverRing: ratio(exact, ring),
      starOverRing: ratio(star, ring),
      redisMBps: median(slowestPerRep('bound').map((ms) => boundBytes / 1e3 / ms)),
      rankCpuMs: { ring: cpuMs('ring'), exact: cpuMs('exact'), star: cpuMs('star'), bound: cpuMs('bound') },
      ringBytesMovedThroughRedis: moved,
    })}\n`,
  );
}
await comm.barrier();
push.disconnect();
pop.disconnect();
await comm.close();
