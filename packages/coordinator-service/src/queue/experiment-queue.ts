import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { experimentQueueKeys } from '@lits-ddp/protocol';

export const QUEUE_NAME = experimentQueueKeys.name;

export interface ExperimentJobData {
  id: string;
}

/** BullMQ keys live under the deployment's prefix, next to ours (`lits:bull:experiments:…`). */
export const bullPrefix = (): string => experimentQueueKeys.prefix();

/** API priority (0–100, higher first) → BullMQ priority (1 = first). FIFO holds within one priority. */
export const bullPriority = (priority: number): number => 101 - priority;

/** Job ids are experiment ids; completed and failed jobs are trimmed, our records stay. */
const JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: { count: 1000, age: 7 * 24 * 3600 },
  removeOnFail: { count: 5000, age: 30 * 24 * 3600 },
};

/** The durable `experiments` queue: one job per experiment. */
export class ExperimentQueue {
  readonly queue: Queue<ExperimentJobData>;

  constructor(connection: ConnectionOptions) {
    this.queue = new Queue<ExperimentJobData>(QUEUE_NAME, {
      connection,
      prefix: bullPrefix(),
      defaultJobOptions: JOB_OPTIONS,
    });
  }

  /** Adds the job of an experiment; a job that already exists under this id is left as it is. */
  async enqueue(id: string, priority: number): Promise<void> {
    await this.enqueueAll([{ id, priority }]);
  }

  /** Adds the jobs of several experiments in one MULTI (BullMQ addBulk); existing ones are left as they are. */
  async enqueueAll(experiments: ReadonlyArray<{ id: string; priority: number }>): Promise<void> {
    if (experiments.length === 0) return;
    await this.queue.addBulk(
      experiments.map(({ id, priority }) => ({
        name: 'experiment',
        data: { id },
        // The queue's JOB_OPTIONS are merged in by BullMQ.
        opts: { jobId: id, priority: bullPriority(priority) },
      })),
    );
  }

  /**
   * Removes a job that has not started. Returns false when it is active (a processor holds it) or
   * gone, so the caller cancels through the run instead.
   */
  async removeIfWaiting(id: string): Promise<boolean> {
    const job = await this.queue.getJob(id);
    if (!job) return false;
    const state = await job.getState();
    if (!['waiting', 'prioritized', 'delayed', 'waiting-children'].includes(state)) return false;
    // 0: a processor took and locked it meanwhile (Redis errors still throw).
    return (await this.queue.remove(id)) === 1;
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
