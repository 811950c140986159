import { REPRO_MODES, type ReproMode, type RunVariant } from './run-record.js';

export interface StudyPlanOptions {
  /** Repeated runs per mode (K). */
  runs: number;
  /** World size of the repeated runs. */
  workers: number;
  /** Extra deterministic runs, one at each of these world sizes (the base size is skipped). */
  worldSizes?: number[];
  /** Add one deterministic run at `workers` with a worker killed mid-run. */
  crash?: boolean;
  /**
   * Add the two elastic deterministic runs at N = `workers` (2 when `workers` is 1, the least an elastic run
   * can change): `shrink` from N to N − 1 workers, `grow` from max(1, ⌊N/2⌋) to N.
   */
  elastic?: boolean;
}

export interface PlannedRun {
  mode: ReproMode;
  variant: RunVariant;
  index: number;
  /** The world size it starts at. */
  workers: number;
  /** Elastic runs: the fewest and the most workers it may run at (the spec's min-workers, max-workers). */
  minWorkers?: number;
  maxWorkers?: number;
}

/** The size an elastic run of the study shrinks from and grows to: `workers`, and at least 2. */
export const elasticSizeOf = (workers: number): number => Math.max(2, workers);

const positiveInt = (v: number): boolean => Number.isInteger(v) && v >= 1;

/**
 * The study's runs in order: the K repeated runs of each mode interleaved (random 1, seed 1, deterministic 1,
 * random 2, …, so a study stopped early still covers every mode), then the deterministic runs at the other
 * world sizes, then the crash run, then the elastic runs (shrink, grow).
 */
export function planStudy(options: StudyPlanOptions): PlannedRun[] {
  if (!positiveInt(options.runs)) throw new RangeError(`runs must be an integer ≥ 1, got ${options.runs}`);
  if (!positiveInt(options.workers))
    throw new RangeError(`workers must be an integer ≥ 1, got ${options.workers}`);
  const bad = (options.worldSizes ?? []).find((n) => !positiveInt(n));
  if (bad !== undefined) throw new RangeError(`world sizes must be integers ≥ 1, got ${bad}`);
  const plan: PlannedRun[] = [];
  for (let i = 1; i <= options.runs; i++) {
    for (const mode of REPRO_MODES)
      plan.push({ mode, variant: 'repeat', index: i, workers: options.workers });
  }
  const others = [...new Set(options.worldSizes ?? [])]
    .filter((n) => n !== options.workers)
    .sort((a, b) => a - b);
  for (const n of others) plan.push({ mode: 'deterministic', variant: 'world-size', index: 1, workers: n });
  if (options.crash)
    plan.push({ mode: 'deterministic', variant: 'crash', index: 1, workers: options.workers });
  if (options.elastic) {
    const n = elasticSizeOf(options.workers);
    const start = Math.max(1, Math.floor(n / 2));
    const elastic = { mode: 'deterministic', index: 1, maxWorkers: n } as const;
    plan.push({ ...elastic, variant: 'shrink', workers: n, minWorkers: n - 1 });
    plan.push({ ...elastic, variant: 'grow', workers: start, minWorkers: start });
  }
  return plan;
}
