import { randomBytes } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import type { Static } from 'typebox';
import { admissionKeys, decodeJson } from '@lits-ddp/protocol';
import type { WorkerPool } from '@lits-ddp/orchestrator';
import { Reservation, WaitingEntry } from './stored-schemas.js';

export interface GateEntry {
  id: string;
  /** Workers the experiment needs. */
  needs: number;
  /** 0–100, higher first. */
  priority: number;
  submittedAt: number;
}

export interface GateOptions {
  /** An experiment ahead that has waited this long gets its workers reserved (no more backfill). */
  starvationMs?: number;
  pollMs?: number;
  /** A reservation not turned into a lease by then is dropped (its coordinator died). */
  reservationTtlMs?: number;
}

/** A GateEntry in Redis, with when it started waiting and its last beat (stale after STALE_MS). */
type Waiting = Static<typeof WaitingEntry>;

const STALE_MS = 30_000;
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** A MULTI's replies carry each command's error: the first one is thrown, not dropped. */
async function execAll(tx: ChainableCommander): Promise<void> {
  for (const [err] of (await tx.exec()) ?? []) if (err) throw err;
}

/**
 * Admits queued experiments to the workers. Order: priority, then submission time. An experiment
 * that does not fit lets smaller ones behind it start (backfill), but once it has waited
 * `starvationMs` the free workers are held for it, so a large experiment is never passed over
 * forever. Admission reserves the workers until the run leases them. Several coordinators share
 * the state in Redis and decide one at a time under a short lock.
 */
export class CapacityGate {
  private readonly starvationMs: number;
  private readonly pollMs: number;
  private readonly reservationTtlMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly pool: WorkerPool,
    opts: GateOptions = {},
  ) {
    this.starvationMs = opts.starvationMs ?? 10 * 60_000;
    this.pollMs = opts.pollMs ?? 1000;
    this.reservationTtlMs = opts.reservationTtlMs ?? 15 * 60_000;
  }

  private static score(e: GateEntry): number {
    return (100 - e.priority) * 1e13 + e.submittedAt;
  }

  /**
   * Waits until `entry` may start. Resolves 'admitted' (workers reserved), or 'stopped' when
   * `shouldStop` says so (cancelled, or the coordinator shuts down).
   */
  async admit(entry: GateEntry, shouldStop: () => Promise<boolean>): Promise<'admitted' | 'stopped'> {
    const since = Date.now();
    try {
      for (;;) {
        if (await shouldStop()) return 'stopped';
        const waiting: Waiting = { ...entry, since, beat: Date.now() };
        await execAll(
          this.redis
            .multi()
            .zadd(admissionKeys.queue(), CapacityGate.score(entry), entry.id)
            .hset(admissionKeys.meta(), entry.id, JSON.stringify(waiting)),
        );
        if (await this.tryAdmit(entry)) return 'admitted';
        await new Promise((r) => setTimeout(r, this.pollMs));
      }
    } finally {
      await this.leaveQueue(entry.id);
    }
  }

  /** Frees the reservation once the run holds its leases (or ended). */
  async release(id: string): Promise<void> {
    await this.redis.hdel(admissionKeys.reserved(), id);
  }

  /** How many experiments wait for admission (an elastic run grows only when none does). */
  async waitingCount(): Promise<number> {
    return this.redis.zcard(admissionKeys.queue());
  }

  /** Where an experiment stands in the admission queue (1 = next), or undefined. */
  async position(id: string): Promise<number | undefined> {
    const rank = await this.redis.zrank(admissionKeys.queue(), id);
    return rank === null ? undefined : rank + 1;
  }

  private async leaveQueue(id: string): Promise<void> {
    await execAll(this.redis.multi().zrem(admissionKeys.queue(), id).hdel(admissionKeys.meta(), id));
  }

  private async tryAdmit(entry: GateEntry): Promise<boolean> {
    const token = randomBytes(8).toString('hex');
    const lock = admissionKeys.lock();
    if ((await this.redis.set(lock, token, 'PX', 5000, 'NX')) !== 'OK') return false;
    try {
      const now = Date.now();
      let free = (await this.pool.freeWorkers()).length;
      for (const [id, raw] of Object.entries(await this.redis.hgetall(admissionKeys.reserved()))) {
        const r = decodeJson(Reservation, raw, `capacity gate ${admissionKeys.reserved()} field ${id}`);
        if (now - r.at > this.reservationTtlMs) await this.redis.hdel(admissionKeys.reserved(), id);
        else free -= r.needs;
      }
      const ids = await this.redis.zrange(admissionKeys.queue(), 0, -1);
      const metas = ids.length > 0 ? await this.redis.hmget(admissionKeys.meta(), ...ids) : [];
      for (const [i, id] of ids.entries()) {
        if (id === entry.id) break;
        const meta = metas[i];
        const ahead = meta
          ? decodeJson(WaitingEntry, meta, `capacity gate ${admissionKeys.meta()} field ${id}`)
          : undefined;
        if (!ahead || now - ahead.beat > STALE_MS) {
          await this.leaveQueue(id);
          continue;
        }
        // Someone ahead fits: it goes first. Someone ahead starving: its workers are held.
        if (ahead.needs <= free) return false;
        if (now - ahead.since > this.starvationMs) free -= ahead.needs;
      }
      if (entry.needs > free) return false;
      await this.redis.hset(
        admissionKeys.reserved(),
        entry.id,
        JSON.stringify({ needs: entry.needs, at: now }),
      );
      return true;
    } finally {
      await this.redis.eval(RELEASE_LOCK, 1, lock, token);
    }
  }
}
