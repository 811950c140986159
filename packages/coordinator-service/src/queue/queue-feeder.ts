import type { Redis } from 'ioredis';
import { errorMessage } from '@lits-ddp/errors';
import { experimentKeys } from '@lits-ddp/protocol';
import type { ExperimentQueue } from './experiment-queue.js';

/** How long closing waits for the last drain. */
const CLOSE_WAIT_MS = 2000;

export interface QueueFeederOptions {
  /** A drain starts this long after the last submission, so a burst is added in one go. Default 10 ms. */
  settleMs?: number;
  /** …and at most this long after the first one not yet added, under a steady stream. Default 200 ms. */
  maxDelayMs?: number;
  /** How often the outbox is swept regardless (entries a crashed coordinator left). Default 5 s. */
  sweepMs?: number;
  /** Ids read, checked and added per BullMQ MULTI. Default 500. */
  batch?: number;
  warn: (message: string) => void;
}

/**
 * The outbox between a stored submission and its BullMQ job. The create script writes the record and its
 * `unqueued` entry atomically, and POST /v1/experiments answers then: one round trip, where adding the job
 * as well made two and twice the event-loop work, in every request of a burst (issue 18, finding 8). The
 * feeder adds the jobs of a burst together (BullMQ addBulk, one MULTI) once the burst has settled, then
 * removes their entries. A coordinator that dies in between leaves the entries: the next drain, a sweep
 * or a restarted coordinator's first drain, adds them. Adding twice is harmless (a job id is added once),
 * and only records still `queued` get a job: one cancelled while its job was being added loses it again.
 */
export class QueueFeeder {
  private readonly settleMs: number;
  private readonly maxDelayMs: number;
  private readonly batch: number;
  private readonly sweep: NodeJS.Timeout;
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt = 0;
  private draining: Promise<number> | undefined;
  private again = false;
  private failing = false;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly queue: ExperimentQueue,
    private readonly opts: QueueFeederOptions,
  ) {
    this.settleMs = opts.settleMs ?? 10;
    this.maxDelayMs = opts.maxDelayMs ?? 200;
    this.batch = opts.batch ?? 500;
    this.sweep = setInterval(() => void this.drain(), opts.sweepMs ?? 5000).unref();
  }

  /** A submission was stored: its job is added once submissions settle (bounded by maxDelayMs). */
  soon(): void {
    if (this.closed) return;
    const now = Date.now();
    if (this.timer === undefined) this.firstPendingAt = now;
    else clearTimeout(this.timer);
    const at = Math.min(now + this.settleMs, this.firstPendingAt + this.maxDelayMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.drain();
    }, at - now);
  }

  /**
   * Adds the job of every entry in the outbox and removes the entries; resolves with the jobs added. One
   * drain runs at a time: a call during one makes it go round again. A failure (Redis down) is logged once
   * per outage and leaves the entries for the next drain.
   */
  drain(): Promise<number> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    this.draining = (async () => {
      let added = 0;
      try {
        do {
          this.again = false;
          for (let n = await this.drainBatch(); n >= 0; n = await this.drainBatch()) added += n;
        } while (this.again);
        if (this.failing) this.opts.warn('queue feeder: the outbox drains again');
        this.failing = false;
      } catch (err) {
        if (!this.failing)
          this.opts.warn(
            `queue feeder: could not add stored submissions to the queue (retried): ${errorMessage(err)}`,
          );
        this.failing = true;
      } finally {
        this.draining = undefined;
      }
      return added;
    })();
    return this.draining;
  }

  /** Submissions stored whose job is not added yet. */
  pending(): Promise<number> {
    return this.redis.zcard(experimentKeys.unqueued());
  }

  /** Takes an experiment out of the outbox before its job is added: true when it was there. */
  async withdraw(id: string): Promise<boolean> {
    return (await this.redis.zrem(experimentKeys.unqueued(), id)) === 1;
  }

  /**
   * Stops the timers, then gives the outbox one last drain, for at most `CLOSE_WAIT_MS`: one held up by a
   * Redis outage must not hold up the shutdown (what it leaves, the next start adds).
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const last = this.failing ? this.draining : this.drain();
    if (!last) return;
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([last, new Promise<void>((resolve) => (waited = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(waited);
  }

  /** One batch: the jobs it added, or -1 when the outbox was empty. */
  private async drainBatch(): Promise<number> {
    const key = experimentKeys.unqueued();
    const ids = await this.redis.zrange(key, 0, this.batch - 1);
    if (ids.length === 0) return -1;
    // Not queued any more (cancelled, or its job already ran), or gone: no job to add.
    const queued = [...(await this.recordsOf(ids))].filter(([, r]) => r.status === 'queued');
    await this.queue.enqueueAll(queued.map(([id, { priority }]) => ({ id, priority })));
    // Cancelled while its job was being added (cancel found no job yet and took the entry): the job goes.
    const now = await this.recordsOf(queued.map(([id]) => id));
    const cancelled = queued.filter(([id]) => now.get(id)?.status === 'cancelled');
    for (const [id] of cancelled) await this.queue.queue.remove(id);
    await this.redis.zrem(key, ...ids);
    return queued.length - cancelled.length;
  }

  /** The status and priority of each of `ids` whose record exists (one pipeline). */
  private async recordsOf(
    ids: readonly string[],
  ): Promise<Map<string, { status: string; priority: number }>> {
    const records = new Map<string, { status: string; priority: number }>();
    if (ids.length === 0) return records;
    const read = this.redis.pipeline();
    for (const id of ids) read.hmget(experimentKeys.record(id), 'status', 'priority');
    const rows = (await read.exec()) ?? [];
    ids.forEach((id, i) => {
      const [err, fields] = rows[i] ?? [];
      if (err) throw err;
      const [status, priority] = fields as [string | null, string | null];
      if (status !== null) records.set(id, { status, priority: Number(priority ?? 50) });
    });
    return records;
  }
}
