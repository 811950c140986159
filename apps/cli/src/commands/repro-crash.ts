import type { ResolvedSpec, RunEvent } from '@lits-ddp/protocol';
import type { ReproRunRecord } from '@lits-ddp/repro-report';
import type { WorkerProcesses } from '../launcher/worker-processes.js';

/** Where the crash run kills a worker: this rank, from this epoch on (epochs counted from 0). */
export interface CrashPoint {
  rank: number;
  epoch: number;
}

/**
 * Rank N − 1 in the middle of the checkpoint interval that holds the middle epoch (never before the first
 * checkpoint), so the restart resumes from a checkpoint and replays about half an interval. Checkpoints end
 * every `test-epochs`-th epoch; a kill before the first one would only show a retraining from scratch.
 * A string says why the spec has no such point.
 */
export function crashPointOf(
  spec: Pick<ResolvedSpec, 'max_epochs' | 'test-epochs' | 'workers'>,
  leaveOutFlag = '--no-crash',
): CrashPoint | string {
  const epochs = spec.max_epochs;
  const every = spec['test-epochs'];
  const middle = Math.max(Math.floor(epochs / 2), every);
  const intervalStart = Math.floor(middle / every) * every;
  const epoch = Math.min(intervalStart + Math.floor(every / 2), epochs - 1);
  if (middle > epochs - 1)
    return (
      `with max_epochs ${epochs} and test-epochs ${every} the first checkpoint ends the last epoch, so a killed ` +
      `worker could not resume from one: lower --test-epochs, raise --epochs, or pass ${leaveOutFlag}`
    );
  return { rank: spec.workers - 1, epoch };
}

/**
 * Watches the crash run's (or the shrink run's) events: kills the chosen rank with SIGKILL in the middle step
 * of its epoch once a checkpoint exists, then reads from the first step after the restart which checkpoint
 * the group resumed from, and how long after the kill that step came.
 */
export class CrashWatcher {
  killed: ReproRunRecord['killed'] = null;
  resumedFrom: { epoch: number } | null = null;
  /** Seconds from the kill to the first step of the next generation; null until it is seen. */
  recoveryS: number | null = null;
  private killedAt = 0;
  private lastCheckpoint: number | undefined;
  private killedGeneration = Number.POSITIVE_INFINITY;
  private restartSeen = false;

  constructor(
    private readonly point: CrashPoint,
    private readonly log: (line: string) => void,
  ) {}

  onEvent(e: RunEvent, workers: WorkerProcesses): void {
    if (e.type === 'checkpoint' && e.kind === 'last') this.lastCheckpoint = e.epoch;
    if (e.type !== 'progress') return;
    if (this.killed) {
      // A resumed group starts at the epoch after its checkpoint; a fresh one at epoch 0.
      if (!this.restartSeen && e.generation > this.killedGeneration) {
        this.restartSeen = true;
        this.recoveryS = Math.round((Date.now() - this.killedAt) / 100) / 10;
        this.resumedFrom = e.epoch > 0 ? { epoch: e.epoch - 1 } : null;
        this.log(
          this.resumedFrom
            ? `restarted group resumed at epoch ${e.epoch} (the checkpoint of epoch ${this.resumedFrom.epoch}), ${this.recoveryS} s after the kill`
            : `restarted group started from scratch (no checkpoint), ${this.recoveryS} s after the kill`,
        );
      }
      return;
    }
    const { rank, epoch } = this.point;
    if (e.rank !== rank || this.lastCheckpoint === undefined) return;
    const middleStep = Math.floor((e.stepsPerEpoch - 1) / 2);
    if (e.epoch < epoch || (e.epoch === epoch && e.step < middleStep)) return;
    const pid = workers.pid(workers.ids[rank] as string);
    if (!pid) return;
    process.kill(pid, 'SIGKILL');
    this.killedAt = Date.now();
    this.killed = { rank, epoch: e.epoch };
    this.killedGeneration = e.generation;
    this.log(
      `kill -9 rank ${rank} (pid ${pid}) after step ${e.step} of epoch ${e.epoch}; the last checkpoint ends epoch ${this.lastCheckpoint}`,
    );
  }
}
