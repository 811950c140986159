import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { RedisCommandError, type WaitPoint } from './errors.js';

/** One blocking pop queued on a receive connection. */
export interface PendingWait {
  point: WaitPoint;
  key: string;
  /**
   * When this pop became the head of its connection's queue (the moment it started to really wait), on the
   * monotonic clock: a wall-clock step (NTP on a VM) must neither fire nor hold off the watchdog.
   */
  since: number | undefined;
}

/**
 * Blocking pops on one dedicated connection. Pops may be issued ahead (pipelined): Redis serves them one after the
 * other, so replies come back in issue order and only the head of the queue is really waiting. The timeout of a
 * wait therefore counts from when it became the head, i.e. "no progress for timeoutMs".
 */
export class Receiver {
  private readonly queue: PendingWait[] = [];

  constructor(
    readonly connection: Redis,
    /** Server-side BLPOP timeout: a backstop well after the client-side watchdog. */
    private readonly blockS: number,
    /** Settles once the communicator has judged the stuck wait (diagnosed and failed), see pop(). */
    private readonly onServerTimeout: (wait: PendingWait) => Promise<void>,
  ) {}

  pop(key: string, point: WaitPoint): Promise<Buffer> {
    const entry: PendingWait = { point, key, since: this.queue.length === 0 ? performance.now() : undefined };
    this.queue.push(entry);
    return this.connection.blpopBuffer(key, this.blockS).then(
      async (reply) => {
        this.advance(entry);
        if (!reply) {
          // The backstop and the watchdog come due together after an event-loop stall longer than the margin
          // between them: the communicator's diagnosed timeout, not this bare error, must be what callers see.
          await this.onServerTimeout(entry);
          throw new RedisCommandError(`BLPOP ${key} returned nothing after ${this.blockS} s`);
        }
        return reply[1];
      },
      (err: unknown) => {
        this.advance(entry);
        throw err;
      },
    );
  }

  /** The wait at the head of the queue, if any. */
  head(): PendingWait | undefined {
    return this.queue[0];
  }

  private advance(entry: PendingWait): void {
    const i = this.queue.indexOf(entry);
    if (i >= 0) this.queue.splice(i, 1);
    const head = this.queue[0];
    if (head && head.since === undefined) head.since = performance.now();
  }
}
