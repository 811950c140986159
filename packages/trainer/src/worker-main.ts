import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { redisOutageLines, redisOutages } from '@lits-ddp/allreduce';
import { errorMessage } from '@lits-ddp/errors';
import { loadEngine, parseThreadCount, type Engine } from '@lits-ddp/unet';
import {
  decodeJson,
  DEFAULT_ENGINE_THREADS,
  JsonDecodeError,
  runEventXadd,
  runKeys,
  RunPlan,
  type RunEvent,
  type WorkerCommand,
} from '@lits-ddp/protocol';
import { RunPlanError, TrainingStopped, WorkerUsageError } from './errors.js';
import { collectSystemInfo } from './system-info.js';
import { DEREGISTER_TIMEOUT_MS, untilAborted, WorkerAgent } from './worker-agent.js';
import { runTraining } from './training/train-run.js';

const USAGE = `lits worker — one training worker process (one per GPU)

  --redis URL          Redis (default REDIS_URL)
  --id ID              stable worker id (default HOSTNAME-PID-random; k8s: the pod name)
  --engine E           auto | gpu | node | cpu (default TFJS_ENGINE, then auto: native when it loads)
  --threads N          a native engine's intra-op threads (default LITS_ENGINE_THREADS, then ${DEFAULT_ENGINE_THREADS});
                       runs lease workers whose count equals their spec's engine-threads
  --no-deterministic-ops   do not set TF_DETERMINISTIC_OPS / TF_CUDNN_DETERMINISTIC before a native engine loads
  --heartbeat-s S      heartbeat period (default 2)
  --once               exit after one run generation
  --exit-when-run-ends RUN_ID
                       serve that run (across restarts) and exit when it ends: 0 when it finished or was
                       cancelled, 3 when it failed (a Kubernetes Job's pods run like this)`;

/**
 * The exit code of `--exit-when-run-ends` when the run failed. Not 1, which Node gives any crash (an
 * uncaught error, a bad flag), so that a Kubernetes Job retries crashes but not this.
 */
export const RUN_FAILED_EXIT_CODE = 3;

export interface WorkerProcessOptions {
  redisUrl: string;
  workerId?: string;
  engine?: string;
  /** Intra-op threads of a native engine (inter-op: 1). Default LITS_ENGINE_THREADS, then DEFAULT_ENGINE_THREADS. */
  threads?: number;
  deterministicOps?: boolean;
  heartbeatIntervalS?: number;
  once?: boolean;
  /** Serve this run across its generations, then exit (0 finished/cancelled, RUN_FAILED_EXIT_CODE failed). */
  exitWhenRunEnds?: string;
  log?: (line: string) => void;
}

const TERMINAL = new Set(['finished', 'failed', 'cancelled']);

async function publish(redis: Redis, runId: string, event: RunEvent): Promise<void> {
  await redis.xadd(...runEventXadd(runId, event));
}

async function readPlan(redis: Redis, cmd: Extract<WorkerCommand, { type: 'assign' }>): Promise<RunPlan> {
  const key = runKeys.plan(cmd.runId);
  const raw = await redis.get(key);
  if (!raw) throw new RunPlanError(`run ${cmd.runId}: no plan in Redis`);
  const plan = decodeJson(RunPlan, raw, `run plan ${key}`);
  if (plan.generation !== cmd.generation) {
    throw new RunPlanError(
      `run ${cmd.runId}: plan is generation ${plan.generation}, assignment is ${cmd.generation}`,
    );
  }
  return plan;
}

/** Registers, then runs assignments until shut down (SIGTERM/SIGINT finish or abort the current collective). */
export async function runWorkerProcess(opts: WorkerProcessOptions): Promise<number> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const restoreOutageLog = redisOutages.logTo(redisOutageLines((line) => log(`worker: ${line}`)));
  try {
    return await serve(opts, log);
  } finally {
    restoreOutageLog();
  }
}

async function serve(opts: WorkerProcessOptions, log: (line: string) => void): Promise<number> {
  const envThreads = process.env.LITS_ENGINE_THREADS;
  const intraOp =
    opts.threads ??
    (envThreads ? parseThreadCount(envThreads, 'LITS_ENGINE_THREADS') : DEFAULT_ENGINE_THREADS);
  const engine: Engine = await loadEngine({
    engine: opts.engine,
    deterministic: opts.deterministicOps ?? true,
    threads: { intraOp, interOp: 1 },
  });
  if (engine.fallback) log(`worker: ${engine.fallback}`);
  const gpu = collectSystemInfo(engine.version).gpus[0];
  const agent = new WorkerAgent({
    redisUrl: opts.redisUrl,
    workerId: opts.workerId,
    engine: engine.name,
    engineThreads: engine.threads,
    libtensorflow: engine.libtensorflow,
    engineFallback: engine.fallback,
    engineEnvironment: engine.environment,
    device: gpu?.name ?? (engine.name === 'cpu' ? 'cpu (pure JS)' : 'cpu'),
    ...(gpu?.memoryBytes ? { memoryBytes: gpu.memoryBytes } : {}),
    system: collectSystemInfo(engine.version),
    heartbeatIntervalS: opts.heartbeatIntervalS,
  });
  const stopping = new AbortController();
  // Redis may be down when a signal comes, and our connections wait for it forever: what is left to tell it
  // (the `failed` event, the state) is given up once the signal is that old and Redis is unreachable. While Redis
  // answers, everything is still awaited (a long step may end well after the signal).
  const giveUpRedis = new AbortController();
  let serving: { runId: string; rank: number } | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping.signal.aborted) return;
    log(`worker ${agent.id}: ${signal}, stopping after the current collective`);
    stopping.abort(signal);
    setTimeout(() => {
      void redisOutages.unreachable().then(() => giveUpRedis.abort());
    }, DEREGISTER_TIMEOUT_MS).unref();
    // Written before the rank's `failed` event (same connection): the supervisor sees a leaving worker.
    agent.setState('stopping', serving).catch(() => undefined);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A signal while Redis is down at start ends the wait for the registration too.
  await untilAborted(agent.start(), stopping.signal);
  if (!stopping.signal.aborted) log(`worker ${agent.id} ready: ${engine.description}`);
  const watched = opts.exitWhenRunEnds;
  let runEnded: string | undefined;
  const runIsOver = async (): Promise<boolean> => {
    if (!watched) return false;
    const status = await untilAborted(agent.redis.get(runKeys.status(watched)), giveUpRedis.signal);
    if (status && TERMINAL.has(status)) runEnded = status;
    return runEnded !== undefined;
  };
  try {
    while (!stopping.signal.aborted) {
      const cmd = await agent.nextCommand(
        stopping.signal,
        (raw, problem) => log(`ignoring malformed command (${problem}): ${raw.slice(0, 200)}`),
        runIsOver,
      );
      if (!cmd || cmd.type === 'shutdown') break;
      if (cmd.type !== 'assign') continue;
      if (watched && cmd.runId !== watched) {
        log(`ignoring an assignment for ${cmd.runId}: this worker serves ${watched} only`);
        continue;
      }
      let plan: RunPlan;
      try {
        plan = await readPlan(agent.redis, cmd);
      } catch (err) {
        log(errorMessage(err));
        // A plan that does not decode fails the generation now: the run would otherwise wait for this rank.
        if (err instanceof JsonDecodeError)
          await publish(agent.redis, cmd.runId, {
            type: 'failed',
            generation: cmd.generation,
            rank: cmd.rank,
            error: err.message,
          });
        continue;
      }
      serving = { runId: cmd.runId, rank: cmd.rank };
      await agent.setState('busy', serving);
      const send = async (event: RunEvent): Promise<void> => {
        await untilAborted(publish(agent.redis, cmd.runId, event), giveUpRedis.signal);
      };
      try {
        await runTraining({
          plan,
          rank: cmd.rank,
          redisUrl: opts.redisUrl,
          engine,
          publish: send,
          signal: stopping.signal,
          log,
        });
      } catch (err) {
        if (!(err instanceof TrainingStopped)) log(`rank ${cmd.rank} of ${cmd.runId}: ${errorMessage(err)}`);
      } finally {
        serving = undefined;
        // A stopping worker must not look free to a supervisor that is leasing a new generation.
        await untilAborted(agent.setState(stopping.signal.aborted ? 'stopping' : 'idle'), giveUpRedis.signal);
      }
      if (opts.once || (await runIsOver())) break;
    }
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    if (!(await agent.stop())) {
      const outage = redisOutages.outage;
      log(
        `worker ${agent.id}: could not deregister within ${DEREGISTER_TIMEOUT_MS / 1000} s` +
          `${outage ? `: Redis unreachable (${outage.reason})` : ''}; the coordinator prunes the entry once its ` +
          'heartbeat is gone',
      );
    }
  }
  if (runEnded) log(`run ${watched} ${runEnded}: exiting`);
  return runEnded === 'failed' ? RUN_FAILED_EXIT_CODE : 0;
}

export async function runWorkerCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      redis: { type: 'string' },
      id: { type: 'string' },
      engine: { type: 'string' },
      threads: { type: 'string' },
      'no-deterministic-ops': { type: 'boolean', default: false },
      'heartbeat-s': { type: 'string' },
      once: { type: 'boolean', default: false },
      'exit-when-run-ends': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const redisUrl = values.redis ?? process.env.REDIS_URL;
  if (!redisUrl) throw new WorkerUsageError('lits worker needs Redis: pass --redis URL or set REDIS_URL');
  const heartbeat = values['heartbeat-s'] !== undefined ? Number(values['heartbeat-s']) : undefined;
  if (heartbeat !== undefined && !(heartbeat > 0))
    throw new WorkerUsageError(`--heartbeat-s must be a positive number, got ${values['heartbeat-s']}`);
  return runWorkerProcess({
    redisUrl,
    ...(values.id ? { workerId: values.id } : {}),
    ...(values.engine ? { engine: values.engine } : {}),
    ...(values.threads !== undefined ? { threads: parseThreadCount(values.threads, '--threads') } : {}),
    deterministicOps: !values['no-deterministic-ops'],
    ...(heartbeat ? { heartbeatIntervalS: heartbeat } : {}),
    once: values.once,
    ...(values['exit-when-run-ends'] ? { exitWhenRunEnds: values['exit-when-run-ends'] } : {}),
  });
}
