import type { RunEvent } from '@lits-ddp/protocol';
import type { PlannedRun } from '@lits-ddp/repro-report';
import type { CrashPoint } from './repro-crash.js';

/**
 * How long the shrink run's restart waits for the killed worker before it goes on with one fewer. Short: the
 * launcher does not start it again, so waiting longer would only add to the measured recovery time.
 */
export const SHRINK_ELASTIC_WAIT_S = 2;

const isElastic = (p: PlannedRun): boolean => p.variant === 'shrink' || p.variant === 'grow';

/** A planned run's key among the study's resolved specs: mode and world size, and an elastic run's variant. */
export const specKey = (p: PlannedRun): string =>
  isElastic(p) ? `${p.mode}/${p.variant}/${p.workers}` : `${p.mode}/${p.workers}`;

/** The world size in a run's progress label: `2`, or an elastic run's `2→1`, `1→2`. */
export function sizeLabel(p: PlannedRun): string {
  const to = p.variant === 'shrink' ? p.minWorkers : p.variant === 'grow' ? p.maxWorkers : undefined;
  return to === undefined ? String(p.workers) : `${p.workers}→${to}`;
}

/** The report configuration's line on the elastic runs (`none` when left out). */
export function elasticRunsLine(plan: readonly PlannedRun[], shrinkPoint: CrashPoint | undefined): string {
  const shrink = plan.find((p) => p.variant === 'shrink');
  const grow = plan.find((p) => p.variant === 'grow');
  const parts: string[] = [];
  if (shrink && shrinkPoint)
    parts.push(
      `shrink ${sizeLabel(shrink)} (kill -9 rank ${shrinkPoint.rank} in epoch ${shrinkPoint.epoch}, not restarted; elastic-wait-s ${SHRINK_ELASTIC_WAIT_S})`,
    );
  if (grow) parts.push(`grow ${sizeLabel(grow)}`);
  return parts.join(', ') || 'none';
}

/**
 * The spec input of a planned run: the study's raw spec at the run's mode and world size. A fixed-size run drops
 * any min-workers, max-workers of a --config (so an elastic config does not make the repeats elastic); an
 * elastic one gets the plan's range, and the shrink run a short elastic wait.
 */
export function runSpecInput(raw: Record<string, unknown>, planned: PlannedRun): Record<string, unknown> {
  const input: Record<string, unknown> = { ...raw, determinism: planned.mode, workers: planned.workers };
  delete input['min-workers'];
  delete input['max-workers'];
  if (!isElastic(planned)) return input;
  input['min-workers'] = planned.minWorkers ?? planned.workers;
  input['max-workers'] = planned.maxWorkers ?? planned.workers;
  if (planned.variant === 'shrink') input['elastic-wait-s'] = SHRINK_ELASTIC_WAIT_S;
  return input;
}

/** The world size of each generation of a run, in order, from its `generation` events. */
export class GenerationSizes {
  private readonly byGeneration = new Map<number, number>();

  onEvent(e: RunEvent): void {
    if (e.type === 'generation') this.byGeneration.set(e.generation, e.worldSize);
  }

  get sizes(): number[] {
    return [...this.byGeneration.entries()].sort(([a], [b]) => a - b).map(([, size]) => size);
  }
}
