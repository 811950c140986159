// The coordinator's HTTP app (no queue processor) for bench/load.mjs, in its own process so the
// load generator does not share its event loop. Prints its URL on stdout; SIGTERM stops it.
// Over the IPC channel the bench brackets each measured phase: {cmd: 'start', profile?} and
// {cmd: 'stop'}, answered with the CPU time of this process's main thread (the event loop's own
// thread: GC helpers and libuv's pool are not in it, nor the time the kernel ran someone else),
// of the whole process, and the event-loop busy time, over the phase (and, when asked, the V8 CPU
// profile of just that phase, written to `profile`).
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';

// LOAD_SERVER_DIST: another build of this package (its dist/index.js), to compare in the same conditions.
const { buildApp, createLogger } = await import(process.env.LOAD_SERVER_DIST ?? '../dist/index.js');

const [redisUrl, dataRoot, home, token] = process.argv.slice(2);
const app = await buildApp({
  redisUrl,
  tokens: [token],
  dataRoot,
  home,
  rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
  logger: createLogger('warn', pino.destination(2)),
});
const url = await app.listen({ port: 0, host: '127.0.0.1' });

/** ns the main thread has run (Linux schedstat; its task id is the pid), or undefined elsewhere. */
function mainThreadCpuNs() {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

let session;
let phase;
async function start(profile) {
  if (profile) {
    session ??= new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  phase = {
    profile,
    thread: mainThreadCpuNs(),
    cpu: process.cpuUsage(),
    elu: performance.eventLoopUtilization(),
  };
}
async function stop() {
  const elu = performance.eventLoopUtilization(phase.elu);
  const cpu = process.cpuUsage(phase.cpu);
  const thread = mainThreadCpuNs();
  if (phase.profile) {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await writeFile(phase.profile, JSON.stringify(profile));
  }
  return {
    mainThreadCpuMs:
      thread === undefined || phase.thread === undefined ? null : (thread - phase.thread) / 1e6,
    processCpuMs: (cpu.user + cpu.system) / 1000,
    loopBusyMs: elu.active,
  };
}
process.on('message', (msg) => {
  const done = msg.cmd === 'start' ? start(msg.profile).then(() => ({})) : stop();
  done.then(
    (reply) => process.send({ id: msg.id, ...reply }),
    (err) => process.send({ id: msg.id, error: err.message }),
  );
});

process.stdout.write(`${url}\n`);
process.once('SIGTERM', async () => {
  // The bench's jobs are left behind when this fails: say so, then stop anyway.
  await app.ctx.queue.queue
    .obliterate({ force: true })
    .catch((err) => process.stderr.write(`could not empty the bench queue: ${err.message}\n`));
  await app.close();
  process.exit(0);
});
