import { Job, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { coordinatorKeys } from '@lits-ddp/protocol';
import type { ExperimentJobData } from './experiment-queue.js';

/** A coordinator counts as dead this long after its last beat. */
export const ALIVE_TTL_MS = 5000;
const BEAT_MS = 1000;

/** The queue worker named by a BullMQ lock token or a run's owner value (`<queue worker id>:<n>`). */
export const holderOf = (token: string): string => token.slice(0, token.indexOf(':'));

// Deletes a key only while it still holds the value read before (a holder found dead may not be replaced meanwhile).
const DELETE_IF = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Tells live coordinators from dead ones, and takes over the jobs of dead ones at once.
 *
 * Each coordinator beats a key named by its BullMQ worker id (`coordinatorKeys.alive`, TTL 5 s, every
 * second). BullMQ alone gives a killed coordinator's job back only after its lock lapses (60 s) and two
 * stalled checks (30 s apart) have seen it: for that long the experiment's record would say `running`
 * for a run that may have finished. A job lock names its holder (the token is `<worker id>:<n>`), so a
 * sweep every second moves an active job whose holder has no beat back to the queue, with the dead
 * holder's token, and a live processor adopts the run a moment later.
 */
export class CoordinatorLiveness {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly worker: Worker<ExperimentJobData>,
    private readonly log: Logger,
  ) {}

  get id(): string {
    return this.worker.id;
  }

  /** Beats now and every second; each beat also sweeps the jobs of dead coordinators. */
  start(): void {
    const tick = (): void => {
      this.beating = this.beatAndSweep().catch((err: unknown) =>
        this.log.warn({ err }, 'could not beat or look for the jobs of dead coordinators'),
      );
    };
    tick();
    this.timer = setInterval(tick, BEAT_MS);
  }

  /** Stops beating and says so at once: this coordinator's runs are handed back, not orphaned. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await this.redis.del(coordinatorKeys.alive(this.id)).catch(() => undefined);
  }

  /** Whether the coordinator owning `token` (a lock token or an owner value) still beats. */
  async holderAlive(token: string): Promise<boolean> {
    const holder = holderOf(token);
    if (holder === this.id) return true;
    return holder !== '' && (await this.redis.exists(coordinatorKeys.alive(holder))) === 1;
  }

  /** Deletes `key` if it still holds `value` (the owner of a run whose coordinator died). */
  async deleteIfUnchanged(key: string, value: string): Promise<void> {
    await this.redis.eval(DELETE_IF, 1, key, value);
  }

  private async beatAndSweep(): Promise<void> {
    await this.redis.set(coordinatorKeys.alive(this.id), String(Date.now()), 'PX', ALIVE_TTL_MS);
    const moved = await this.sweep();
    if (moved.length > 0)
      this.log.info(
        { experiments: moved },
        'took back the experiments of a coordinator that stopped beating',
      );
  }

  /** Moves the active jobs of dead coordinators back to the queue; returns their ids. */
  async sweep(): Promise<string[]> {
    const moved: string[] = [];
    for (const id of await this.redis.lrange(this.worker.keys.active, 0, -1)) {
      const token = await this.redis.get(this.worker.toKey(`${id}:lock`));
      // No lock: BullMQ's own stalled check hands the job out.
      if (token === null || (await this.holderAlive(token))) continue;
      const job = await Job.fromId<ExperimentJobData>(this.worker, id);
      if (!job) continue;
      try {
        // With the dead holder's token: fails (another coordinator was quicker, or the holder lives after all) unless it still holds the lock.
        await job.moveToWait(token);
        moved.push(id);
      } catch (err) {
        this.log.debug({ err, runId: id }, 'job of a dead coordinator already moved');
      }
    }
    return moved;
  }
}
