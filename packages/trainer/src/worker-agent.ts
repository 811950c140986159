import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
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

export interface WorkerAgentOptions {
  redisUrl: string;
  /** Stable id (e.g. the pod name); a random one otherwise. */
  workerId?: string;
  engine: string;
  /** Native thread pools; omitted or null for the pure-JS engine. */
  engineThreads?: EngineThreads | null;
  libtensorflow?: string | null;
  engineFallback?: string | null;
  device: string;
  memoryBytes?: number;
  system: SystemInfo;
  heartbeatIntervalS?: number;
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
    this.redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    this.blocking = this.redis.duplicate();
    this.info = {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      engine: opts.engine,
      engineThreads: opts.engineThreads ?? null,
      libtensorflow: opts.libtensorflow ?? null,
      engineFallback: opts.engineFallback ?? null,
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
  }

  async setState(state: WorkerState, run?: { runId: string; rank: number }): Promise<void> {
    const { runId: _r, rank: _k, ...rest } = this.info;
    this.info = { ...rest, state, ...(run ? { runId: run.runId, rank: run.rank } : {}) };
    await this.publishInfo();
  }

  /**
   * Waits for the next valid command; malformed inbox entries are reported (with what is wrong with
   * them) and skipped. Gives up (undefined) when `signal` aborts or, checked about every second,
   * `stop()` says so.
   */
  async nextCommand(
    signal?: AbortSignal,
    onInvalid?: (raw: string, problem: string) => void,
    stop?: () => Promise<boolean>,
  ): Promise<WorkerCommand | undefined> {
    const inbox = workerKeys.inbox(this.id);
    while (!signal?.aborted) {
      if (stop && (await stop())) return undefined;
      await this.registerAgainIfPruned();
      const popped = await this.blocking.blpop(inbox, 1);
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

  async stop(): Promise<void> {
    this.heartbeat?.postMessage('stop');
    // The heartbeat key goes here too: the process may exit before the thread deletes it.
    await Promise.allSettled([
      this.redis.srem(workerKeys.registry(), this.id),
      this.redis.del(workerKeys.info(this.id), workerKeys.inbox(this.id), workerKeys.heartbeat(this.id)),
    ]);
    this.blocking.disconnect();
    await this.redis.quit().catch(() => undefined);
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
