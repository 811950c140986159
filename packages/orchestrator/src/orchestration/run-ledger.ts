import type { RunEvent, RunStatus } from '@lits-ddp/protocol';
import type { RunOutcome } from './run-outcome.js';

export type FinishedEvent = Extract<RunEvent, { type: 'finished' }>;
export type FailedEvent = Extract<RunEvent, { type: 'failed' }>;

const TERMINAL: ReadonlySet<RunStatus> = new Set(['finished', 'failed', 'cancelled']);

/**
 * What a run's event stream says so far: checkpoints, the latest metric values, which (metric, step)
 * pairs were logged, the restart count and the current generation. The live supervisor feeds it
 * event by event; an adopting supervisor replays the whole stream through the same rules, so both
 * reach the same state.
 */
export class RunLedger {
  /** `${metric}@${step}` → value, first value wins (epochs re-run after a restart are not logged twice). */
  readonly metricPoints = new Map<string, { key: string; step: number; value: number }>();
  readonly latestMetrics: Record<string, number> = {};
  lastCheckpoint: { path: string; epoch: number } | undefined;
  bestCheckpoint: string | undefined;
  restarts = 0;
  /** Events of generations below this one are stale (the supervisor had moved on). */
  generation = 0;
  lastStatus: { status: RunStatus; message?: string } | undefined;
  readonly finished = new Map<number, FinishedEvent>();
  failure: FailedEvent | undefined;

  /** Starts following `generation` (finished/failed are per generation). */
  enterGeneration(generation: number): void {
    this.generation = generation;
    this.finished.clear();
    this.failure = undefined;
  }

  get terminal(): boolean {
    return this.lastStatus !== undefined && TERMINAL.has(this.lastStatus.status);
  }

  /**
   * Applies one event. Returns the metrics of a `metrics` event that are new (to be logged), or
   * undefined for every other event and for stale ones.
   */
  apply(event: RunEvent): Record<string, number> | undefined {
    if (event.type === 'status') {
      this.restarts = event.restarts;
      this.lastStatus = { status: event.status, ...(event.message ? { message: event.message } : {}) };
      // The supervisor's 'running'/'restarting' name their generation (older ones: restarts + 1).
      if (event.status === 'running' || event.status === 'restarting') {
        const next = event.generation ?? event.restarts + 1;
        if (next !== this.generation) this.enterGeneration(next);
      }
      return undefined;
    }
    if (!('generation' in event) || event.generation < this.generation) return undefined;
    if (event.generation > this.generation) this.enterGeneration(event.generation);
    switch (event.type) {
      case 'metrics': {
        const step = event.step ?? event.epoch;
        const fresh: Record<string, number> = {};
        for (const [key, value] of Object.entries(event.metrics)) {
          const at = `${key}@${step}`;
          if (!this.metricPoints.has(at)) {
            this.metricPoints.set(at, { key, step, value });
            fresh[key] = value;
          }
        }
        Object.assign(this.latestMetrics, event.metrics);
        return fresh;
      }
      case 'checkpoint':
        if (event.kind === 'last') this.lastCheckpoint = { path: event.path, epoch: event.epoch };
        else this.bestCheckpoint = event.path;
        return undefined;
      case 'failed':
        this.failure ??= event;
        return undefined;
      case 'finished':
        this.finished.set(event.rank, event);
        return undefined;
      default:
        return undefined;
    }
  }

  /** What the ranks of the current generation reported at their end: hashes by rank, rank 0's test metrics and model. */
  finishedResult(
    workers: string[],
  ): Pick<RunOutcome, 'workers' | 'weightHashes' | 'testMetrics' | 'modelPath'> {
    const ordered = [...this.finished.values()].sort((a, b) => a.rank - b.rank);
    const rank0 = ordered[0];
    return {
      workers,
      weightHashes: ordered.map((f) => f.weightHash),
      ...(rank0 ? { testMetrics: rank0.testMetrics, modelPath: rank0.modelPath } : {}),
    };
  }

  /** The metric points grouped by key, in step order. */
  history(): Record<string, Array<{ step: number; value: number }>> {
    const out: Record<string, Array<{ step: number; value: number }>> = {};
    for (const p of this.metricPoints.values()) (out[p.key] ??= []).push({ step: p.step, value: p.value });
    for (const list of Object.values(out)) list.sort((a, b) => a.step - b.step);
    return out;
  }
}
