import type { Redis } from 'ioredis';
import Type, { type TSchema } from 'typebox';
import {
  checkJson,
  decodeJson,
  JsonDecodeError,
  workerKeys,
  WorkerInfo,
  type WorkerCommand,
} from '@lits-ddp/protocol';

export interface LiveWorker {
  info: WorkerInfo;
  /** Milliseconds since the last heartbeat, or undefined when it has expired. */
  heartbeatAgeMs: number | undefined;
}

export interface WorkerPoolOptions {
  /**
   * Where a registry entry that does not decode is reported, once per worker and field (such a
   * worker is neither listed nor leased). Default: a line on stderr.
   */
  warn?: (message: string) => void;
  /**
   * How long `prune` must have seen a worker without heartbeat before it removes the worker's
   * registry entry. Default 30 s (docs/protocol.md).
   */
  deadWorkerGraceMs?: number;
}

export interface WorkerPrunerOptions {
  /** How often the registry is checked. Default 5 s. */
  intervalMs?: number;
  /** Called with the ids a pass removed (only when it removed any). */
  onPruned?: (workerIds: string[]) => void;
  /**
   * Called when a pass fails (Redis down), once per streak of failures: the next passes try again
   * without a word until one succeeds.
   */
  onError?: (err: unknown) => void;
}

export interface WorkerPruner {
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
}

const LEASE_MS = 30_000;
const DEAD_WORKER_GRACE_MS = 30_000;

/**
 * Removes one registry entry, atomically with the checks that it is still dead: no heartbeat, no
 * lease (a running run still counts on it), and the same `startedAt` as when it was found dead, so a
 * worker that re-registered under the same id (a restarted pod) in the meantime is kept.
 * KEYS: registry, info, inbox, heartbeat, lease. ARGV: id, the raw `startedAt` field seen ('' if none).
 */
const PRUNE_DEAD_WORKER = `
if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
local started = redis.call('HGET', KEYS[2], 'startedAt')
if (started or '') ~= ARGV[2] then return 0 end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
`;

/** Reads the worker registry and leases workers to runs, so two runs never share a worker. */
export class WorkerPool {
  private readonly warn: (message: string) => void;
  /** `workerId field` pairs already reported. */
  private readonly reported = new Set<string>();
  private readonly deadWorkerGraceMs: number;
  /**
   * Registered workers seen without heartbeat, with the time first seen so and their raw
   * `startedAt` then. In memory: a restarted coordinator starts the grace period over, which only
   * delays pruning.
   */
  private readonly deadSince = new Map<string, { since: number; startedAt: string }>();

  constructor(
    private readonly redis: Redis,
    opts: WorkerPoolOptions = {},
  ) {
    this.warn = opts.warn ?? ((message) => process.stderr.write(`lits: ${message}\n`));
    this.deadWorkerGraceMs = opts.deadWorkerGraceMs ?? DEAD_WORKER_GRACE_MS;
  }

  /**
   * The registered workers whose entry decodes, by id. An entry with a bad field is left out (a run
   * must not lease a worker it cannot describe) and reported once through `warn`.
   */
  async list(): Promise<LiveWorker[]> {
    const ids = await this.redis.smembers(workerKeys.registry());
    const now = Date.now();
    const workers = await Promise.all(
      ids.sort().map(async (id) => {
        const [hash, beat] = await Promise.all([
          this.redis.hgetall(workerKeys.info(id)),
          this.redis.get(workerKeys.heartbeat(id)),
        ]);
        const decoded = decodeWorkerHash(id, hash);
        if (!decoded) return undefined;
        if ('problem' in decoded) {
          this.reportInvalid(id, decoded);
          return undefined;
        }
        return { info: decoded.info, heartbeatAgeMs: beat ? Math.max(0, now - Number(beat)) : undefined };
      }),
    );
    return workers.filter((w): w is LiveWorker => w !== undefined);
  }

  private reportInvalid(id: string, bad: { field: string; problem: string }): void {
    const key = `${id} ${bad.field}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.warn(`worker ${id} is not leased: its registry entry does not decode (${bad.problem})`);
  }

  async alive(workerId: string): Promise<boolean> {
    return (await this.redis.exists(workerKeys.heartbeat(workerId))) === 1;
  }

  /**
   * Of `workerIds`, those without a heartbeat, shutting down (state `stopping`, e.g. after SIGTERM) or
   * gone from the registry already (a stopped worker deletes its hash).
   */
  async leaving(workerIds: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const id of workerIds) {
      const [beat, state] = await Promise.all([
        this.redis.exists(workerKeys.heartbeat(id)),
        this.redis.hget(workerKeys.info(id), 'state'),
      ]);
      if (beat === 0 || state === null || state === JSON.stringify('stopping')) out.push(id);
    }
    return out;
  }

  /**
   * Leases `count` idle, live workers that `accept` takes to `runId` (preferring `preferred` ids, in
   * order; only those with `onlyPreferred`), or none at all when fewer are free. Leases expire unless
   * renewed, so a dead supervisor frees its workers.
   */
  async lease(
    runId: string,
    count: number,
    preferred: string[] = [],
    onlyPreferred = false,
    accept: (info: WorkerInfo) => boolean = () => true,
  ): Promise<string[] | undefined> {
    // Only idle workers: a busy one may be training a run whose supervisor is down (its lease
    // lapsed), and that run's next supervisor adopts it.
    const live = (await this.list()).filter(
      (w) => w.heartbeatAgeMs !== undefined && w.info.state === 'idle' && accept(w.info),
    );
    const byId = new Map(live.map((w) => [w.info.id, w]));
    const order = [
      ...preferred.filter((id) => byId.has(id)),
      ...(onlyPreferred ? [] : live.map((w) => w.info.id).filter((id) => !preferred.includes(id))),
    ];
    const taken: string[] = [];
    for (const id of order) {
      if (taken.length === count) break;
      const ok = await this.redis.set(workerKeys.lease(id), runId, 'PX', LEASE_MS, 'NX');
      if (ok === 'OK' || (await this.redis.get(workerKeys.lease(id))) === runId) taken.push(id);
    }
    if (taken.length < count) {
      await this.release(runId, taken);
      return undefined;
    }
    return taken;
  }

  /**
   * Takes back the leases of an adopted run's workers (they lapse while no supervisor renews them).
   * Returns the workers that are gone or now leased to another run.
   */
  async reclaim(runId: string, workerIds: string[]): Promise<string[]> {
    const lost: string[] = [];
    for (const id of workerIds) {
      const ok = await this.redis.set(workerKeys.lease(id), runId, 'PX', LEASE_MS, 'NX');
      const mine = ok === 'OK' || (await this.redis.get(workerKeys.lease(id))) === runId;
      if (!mine || !(await this.alive(id))) lost.push(id);
    }
    return lost;
  }

  /** Idle, live workers that no run holds: what a new run could lease now. */
  async freeWorkers(): Promise<string[]> {
    const free: string[] = [];
    for (const w of await this.list()) {
      if (w.heartbeatAgeMs === undefined || w.info.state !== 'idle') continue;
      if ((await this.redis.exists(workerKeys.lease(w.info.id))) === 0) free.push(w.info.id);
    }
    return free;
  }

  /** Extends the leases this run holds. */
  async renew(runId: string, workerIds: string[]): Promise<void> {
    for (const id of workerIds) {
      if ((await this.redis.get(workerKeys.lease(id))) === runId)
        await this.redis.pexpire(workerKeys.lease(id), LEASE_MS);
    }
  }

  async release(runId: string, workerIds: string[]): Promise<void> {
    for (const id of workerIds) {
      if ((await this.redis.get(workerKeys.lease(id))) === runId) await this.redis.del(workerKeys.lease(id));
    }
  }

  async send(workerId: string, command: WorkerCommand): Promise<void> {
    await this.redis.rpush(workerKeys.inbox(workerId), JSON.stringify(command));
  }

  /** Takes back a command `send` queued that the worker has not picked up yet. */
  async withdraw(workerId: string, command: WorkerCommand): Promise<void> {
    await this.redis.lrem(workerKeys.inbox(workerId), 0, JSON.stringify(command));
  }

  /**
   * Removes the registry entries (id, info hash, inbox) of workers this pool has seen without
   * heartbeat for `deadWorkerGraceMs`, unless they hold a lease. Entries that do not decode, or whose
   * hash is gone, are pruned the same way. Returns the ids removed.
   */
  async prune(): Promise<string[]> {
    const ids = await this.redis.smembers(workerKeys.registry());
    const registered = new Set(ids);
    for (const id of this.deadSince.keys()) if (!registered.has(id)) this.deadSince.delete(id);
    const gone: string[] = [];
    for (const id of ids) {
      const [beat, startedAt] = await Promise.all([
        this.redis.exists(workerKeys.heartbeat(id)),
        this.redis.hget(workerKeys.info(id), 'startedAt'),
      ]);
      const seen = this.deadSince.get(id);
      // A beat, or a new registration under the same id, starts the watch over.
      if (beat === 1 || (seen && seen.startedAt !== (startedAt ?? ''))) {
        this.deadSince.delete(id);
        if (beat === 1) continue;
      }
      const dead = this.deadSince.get(id);
      if (!dead) {
        this.deadSince.set(id, { since: Date.now(), startedAt: startedAt ?? '' });
        continue;
      }
      if (Date.now() - dead.since < this.deadWorkerGraceMs) continue;
      const removed = await this.redis.eval(
        PRUNE_DEAD_WORKER,
        5,
        workerKeys.registry(),
        workerKeys.info(id),
        workerKeys.inbox(id),
        workerKeys.heartbeat(id),
        workerKeys.lease(id),
        id,
        dead.startedAt,
      );
      if (removed === 1) {
        this.deadSince.delete(id);
        gone.push(id);
      }
    }
    return gone;
  }

  /**
   * Runs `prune` every `intervalMs` until stopped (what a coordinator does, so `/v1/workers` and
   * `/metrics` drop dead workers). Passes never overlap; the timer does not keep the process alive.
   */
  startPruner(opts: WorkerPrunerOptions = {}): WorkerPruner {
    let pass: Promise<void> | undefined;
    let failing = false;
    const timer = setInterval(() => {
      if (pass) return;
      pass = this.prune()
        .then((gone) => {
          failing = false;
          if (gone.length > 0) opts.onPruned?.(gone);
        })
        .catch((err: unknown) => {
          if (!failing) opts.onError?.(err);
          failing = true;
        })
        .finally(() => {
          pass = undefined;
        });
    }, opts.intervalMs ?? 5_000);
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await pass;
      },
    };
  }
}

const AnyJson = Type.Unknown();

/**
 * A registry hash (one JSON value per WorkerInfo field, from another process): its WorkerInfo, the
 * first field that does not decode, or undefined when the hash is gone (a stopping worker deletes it
 * before it leaves the registry).
 */
function decodeWorkerHash(
  id: string,
  hash: Record<string, string>,
): { info: WorkerInfo } | { field: string; problem: string } | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  const fields: Record<string, unknown> = {};
  const properties: Record<string, TSchema> = WorkerInfo.properties;
  for (const [field, text] of Object.entries(hash)) {
    // A newer worker's extra fields pass through, as long as they are JSON.
    const schema = Object.hasOwn(properties, field) ? (properties[field] as TSchema) : AnyJson;
    try {
      fields[field] = decodeJson(schema, text, `worker ${id}, field ${field}`);
    } catch (err) {
      return { field, problem: decodeFailure(err) };
    }
  }
  try {
    return { info: checkJson(WorkerInfo, fields, `worker ${id}`) };
  } catch (err) {
    return { field: 'required fields', problem: decodeFailure(err) };
  }
}

/** The message of a JsonDecodeError; anything else is not a decoding problem and goes on up. */
function decodeFailure(err: unknown): string {
  if (err instanceof JsonDecodeError) return err.message;
  throw err;
}
