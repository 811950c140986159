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
}

const LEASE_MS = 30_000;

/** Reads the worker registry and leases workers to runs, so two runs never share a worker. */
export class WorkerPool {
  private readonly warn: (message: string) => void;
  /** `workerId field` pairs already reported. */
  private readonly reported = new Set<string>();

  constructor(
    private readonly redis: Redis,
    opts: WorkerPoolOptions = {},
  ) {
    this.warn = opts.warn ?? ((message) => process.stderr.write(`lits: ${message}\n`));
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

  /** Removes registry entries of workers that started over 30 s ago and have no heartbeat now. */
  async prune(): Promise<string[]> {
    const gone: string[] = [];
    for (const w of await this.list()) {
      if (w.heartbeatAgeMs === undefined && Date.now() - w.info.startedAt > 30_000) {
        await this.redis.srem(workerKeys.registry(), w.info.id);
        await this.redis.del(workerKeys.info(w.info.id), workerKeys.inbox(w.info.id));
        gone.push(w.info.id);
      }
    }
    return gone;
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
