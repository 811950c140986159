import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { redisOutages } from '@lits-ddp/allreduce';
import {
  decodeJson,
  JsonDecodeError,
  workerKeys,
  WorkerCommand,
  type EngineThreads,
  type SystemInfo,
  type WorkerInfo,
  type WorkerState,
} from '@lits-ddp/protocol';
import { WorkerUsageError } from './errors.js';
import type { HeartbeatRedisEvent } from './heartbeat-thread.js';

export interface WorkerAgentOptions {
  redisUrl: string;
  /** Stable id (e.g. the pod name); a random one otherwise. */
  workerId?: string;
  engine: string;
  /** Native thread pools; omitted or null for the pure-JS engine. */
  engineThreads?: EngineThreads | null;
  libtensorflow?: string | null;
  engineFallback?: string | null;
  /** The GPU variables the native engine loaded with (Engine.environment). */
  engineEnvironment?: Readonly<Record<string, string>> | null;
  device: string;
  memoryBytes?: number;
  system: SystemInfo;
  heartbeatIntervalS?: number;
}

/** How long `stop()` tries to deregister by default: a SIGTERM while Redis is down must still end the process. */
export const DEREGISTER_TIMEOUT_MS = 2000;

/**
 * `work`'s value, or undefined once `signal` aborts first. Our connections retry forever while Redis is down, so a
 * command may never settle; the one left behind is rejected when its connection closes, and that is ignored.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => undefined);
      resolve(undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Registers the worker, heartbeats from a separate thread, and hands out commands from its inbox. */
export class WorkerAgent {
  readonly id: string;
  readonly redis: Redis;
  private readonly blocking: Redis;
  private heartbeat: Worker | undefined;
  private info: WorkerInfo;

  constructor(private readonly opts: WorkerAgentOptions) {
    this.id = opts.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    if (!/^[\w.-]{1,128}$/.test(this.id))
      throw new WorkerUsageError(`worker id "${this.id}" may only hold letters, digits, _ . -`);
    this.redis = redisOutages.follow(new Redis(opts.redisUrl, { maxRetriesPerRequest: null }), 'worker');
    this.blocking = redisOutages.follow(this.redis.duplicate(), 'worker inbox');
    this.info = {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      engine: opts.engine,
      engineThreads: opts.engineThreads ?? null,
      libtensorflow: opts.libtensorflow ?? null,
      engineFallback: opts.engineFallback ?? null,
      engineEnvironment: opts.engineEnvironment ? { ...opts.engineEnvironment } : null,
      device: opts.device,
      ...(opts.memoryBytes !== undefined ? { memoryBytes: opts.memoryBytes } : {}),
      startedAt: Date.now(),
      state: 'idle',
      system: opts.system,
    };
  }

  get heartbeatIntervalMs(): number {
    return (this.opts.heartbeatIntervalS ?? 2) * 1000;
  }

  async start(): Promise<void> {
    await this.publishInfo();
    const thread = new URL('./heartbeat-thread.js', import.meta.url);
    this.heartbeat = new Worker(thread, {
      workerData: {
        redisUrl: this.opts.redisUrl,
        key: workerKeys.heartbeat(this.id),
        intervalMs: this.heartbeatIntervalMs,
        ttlMs: 3 * this.heartbeatIntervalMs,
      },
    });
    this.heartbeat.unref();
    const relayed = new EventEmitter();
    redisOutages.followEvents(relayed, 'heartbeat');
    this.heartbeat.on('message', (event: HeartbeatRedisEvent) => {
      if (event.redis === 'ready') relayed.emit('ready');
      else relayed.emit('error', Object.assign(new Error(event.message), { code: event.code }));
    });
  }

  async setState(state: WorkerState, run?: { runId: string; rank: number }): Promise<void> {
    const { runId: _r, rank: _k, ...rest } = this.info;
    this.info = { ...rest, state, ...(run ? { runId: run.runId, rank: run.rank } : {}) };
    await this.publishInfo();
  }

  /**
   * Waits for the next valid command; malformed inbox entries are reported (with what is wrong with
   * them) and skipped. Gives up (undefined) when `signal` aborts, at once even while Redis is down,
   * or, checked about every second, `stop()` says so.
   */
  async nextCommand(
    signal?: AbortSignal,
    onInvalid?: (raw: string, problem: string) => void,
    stop?: () => Promise<boolean>,
  ): Promise<WorkerCommand | undefined> {
    const inbox = workerKeys.inbox(this.id);
    while (!signal?.aborted) {
      if (stop && (await untilAborted(stop(), signal))) return undefined;
      await untilAborted(this.registerAgainIfPruned(), signal);
      const popped = await untilAborted(this.blocking.blpop(inbox, 1), signal);
      if (!popped) continue;
      try {
        return decodeJson(WorkerCommand, popped[1], `command in ${inbox}`);
      } catch (err) {
        if (!(err instanceof JsonDecodeError)) throw err;
        onInvalid?.(popped[1], err.message);
      }
    }
    return undefined;
  }

  /**
   * Deregisters and closes the connections. Deregistering is given `timeoutMs`: while Redis is down the process
   * still stops, and its entry is left for the coordinator to prune once its heartbeat is gone. True when the
   * worker's keys are gone.
   */
  async stop(timeoutMs = DEREGISTER_TIMEOUT_MS): Promise<boolean> {
    this.heartbeat?.postMessage('stop');
    // The heartbeat key goes here too: the process may exit before the thread deletes it.
    const deregistering = Promise.all([
      this.redis.srem(workerKeys.registry(), this.id),
      this.redis.del(workerKeys.info(this.id), workerKeys.inbox(this.id), workerKeys.heartbeat(this.id)),
    ]);
    const giveUp = new AbortController();
    const timer = setTimeout(() => giveUp.abort(), timeoutMs);
    let deregistered = false;
    try {
      deregistered = (await untilAborted(deregistering, giveUp.signal)) !== undefined;
    } catch {
      // A rejected command (Redis gone mid-way) leaves the entry to the pruner, as a timeout does.
    } finally {
      clearTimeout(timer);
    }
    this.blocking.disconnect();
    if (deregistered) await this.redis.quit().catch(() => undefined);
    else this.redis.disconnect();
    return deregistered;
  }

  /**
   * A coordinator prunes a worker whose heartbeat was gone for its grace period (a network partition, a long
   * pause): once heartbeats flow again, the idle worker puts its entry back instead of living on unseen.
   */
  private async registerAgainIfPruned(): Promise<void> {
    const [inSet, hasInfo] = await Promise.all([
      this.redis.sismember(workerKeys.registry(), this.id),
      this.redis.exists(workerKeys.info(this.id)),
    ]);
    if (inSet === 0 || hasInfo === 0) await this.publishInfo();
  }

  private async publishInfo(): Promise<void> {
    const key = workerKeys.info(this.id);
    await this.redis
      .multi()
      .del(key)
      .hset(key, Object.fromEntries(Object.entries(this.info).map(([k, v]) => [k, JSON.stringify(v)])))
      .sadd(workerKeys.registry(), this.id)
      .exec();
  }
}
