import { RunRecordError } from './errors.js';

export const REPRO_MODES = ['random', 'seed', 'deterministic'] as const;
export type ReproMode = (typeof REPRO_MODES)[number];

/**
 * Why a run is in the study: one of the K repeated runs of its mode, a deterministic run at another world
 * size, the deterministic run with a worker killed mid-run (and respawned), or an elastic deterministic run:
 * `shrink` loses a worker for good and goes on with one fewer, `grow` starts on fewer workers than it may use
 * and takes the idle ones at its first checkpoint.
 */
export const RUN_VARIANTS = ['repeat', 'world-size', 'crash', 'shrink', 'grow'] as const;
export const ELASTIC_VARIANTS = ['shrink', 'grow'] as const;
export type ElasticVariant = (typeof ELASTIC_VARIANTS)[number];
export type RunVariant = (typeof RUN_VARIANTS)[number];

export const RUN_STATUSES = ['finished', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** One training of the study, as the report stores it (runs.json, runs.csv). */
export interface ReproRunRecord {
  mode: ReproMode;
  variant: RunVariant;
  /** 1-based position within its (mode, variant, workers) group. */
  index: number;
  /** The world size it starts at. */
  workers: number;
  /** Elastic runs: the spec's min-workers and max-workers (the sizes it may run at). */
  minWorkers?: number;
  maxWorkers?: number;
  status: RunStatus;
  runId: string;
  seeds: { data: number; model: number };
  /** Test IoU of each class (index = label), null where the class never occurred. */
  iou: Array<number | null>;
  meanIou: number | null;
  /** Final weight hash of rank 0; null when the run did not finish. */
  weightHash: string | null;
  /** Every rank ended with the same weight hash. */
  ranksAgree: boolean;
  restarts: number;
  /** Case ids of the test split the run was scored on. */
  testCases: number[];
  wallS: number;
  /** Crash run only: the rank killed and the epoch it was killed in (null: the kill never happened). */
  killed?: { rank: number; epoch: number } | null;
  /**
   * Crash run only: the checkpoint the restarted group resumed from, by the epoch it ends (what the first step
   * after the restart shows); null when the group restarted from scratch or never restarted.
   */
  resumedFrom?: { epoch: number } | null;
  /** The world size of each generation in order, from the run's `generation` events (absent in older reports). */
  worldSizes?: number[];
  /**
   * Shrink run only: seconds from the kill to the first step of the shrunk generation (null: the kill or the
   * shrunk generation never happened).
   */
  recoveryS?: number | null;
  error?: string;
}

type Check = (value: unknown) => string | undefined;

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const oneOf =
  (allowed: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && allowed.includes(v)
      ? undefined
      : `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`;
const positiveInt: Check = (v) => (isInt(v) && v >= 1 ? undefined : 'must be an integer ≥ 1');
const nonNegative: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? undefined : 'must be a number ≥ 0';
const str: Check = (v) => (typeof v === 'string' ? undefined : 'must be a string');
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const iouValue = (v: unknown): boolean => v === null || (typeof v === 'number' && v >= 0 && v <= 1);
const nullableIou: Check = (v) => (iouValue(v) ? undefined : 'must be null or a number in [0, 1]');
const nullableStr: Check = (v) =>
  v === null || typeof v === 'string' ? undefined : 'must be null or a string';

const FIELDS: Record<string, Check> = {
  mode: oneOf(REPRO_MODES),
  variant: oneOf(RUN_VARIANTS),
  index: positiveInt,
  workers: positiveInt,
  status: oneOf(RUN_STATUSES),
  runId: str,
  seeds: (v) => {
    const s = v as { data?: unknown; model?: unknown } | null;
    return typeof v === 'object' && s !== null && isInt(s.data) && isInt(s.model)
      ? undefined
      : 'must be { data, model } with integer seeds';
  },
  iou: (v) =>
    Array.isArray(v) && v.length >= 1 && v.every(iouValue)
      ? undefined
      : 'must be a non-empty array of null or numbers in [0, 1]',
  meanIou: nullableIou,
  weightHash: nullableStr,
  ranksAgree: bool,
  restarts: (v) => (isInt(v) && v >= 0 ? undefined : 'must be an integer ≥ 0'),
  testCases: (v) => (Array.isArray(v) && v.every(isInt) ? undefined : 'must be an array of integer case ids'),
  wallS: nonNegative,
};

/** Checks one parsed record; the error names the source, the run's position and the field. */
export function parseRunRecord(value: unknown, where: string): ReproRunRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new RunRecordError(`${where}: must be an object`);
  const obj = value as Record<string, unknown>;
  for (const [field, check] of Object.entries(FIELDS)) {
    const problem = check(obj[field]);
    if (problem)
      throw new RunRecordError(`${where}.${field}: ${problem} (got ${JSON.stringify(obj[field])})`);
  }
  const killed = obj.killed as { rank?: unknown; epoch?: unknown } | null | undefined;
  if (killed !== undefined && killed !== null && !(isInt(killed.rank) && isInt(killed.epoch)))
    throw new RunRecordError(`${where}.killed: must be null or { rank, epoch } with integers`);
  const resumed = obj.resumedFrom as { epoch?: unknown } | null | undefined;
  if (resumed !== undefined && resumed !== null && !(isInt(resumed.epoch) && resumed.epoch >= 0))
    throw new RunRecordError(`${where}.resumedFrom: must be null or { epoch } with an integer ≥ 0`);
  for (const field of ['minWorkers', 'maxWorkers'] as const) {
    if (obj[field] !== undefined && positiveInt(obj[field]))
      throw new RunRecordError(`${where}.${field}: must be an integer ≥ 1`);
  }
  const sizes = obj.worldSizes;
  if (sizes !== undefined && !(Array.isArray(sizes) && sizes.every((n) => positiveInt(n) === undefined)))
    throw new RunRecordError(`${where}.worldSizes: must be an array of integers ≥ 1`);
  if (obj.recoveryS !== undefined && obj.recoveryS !== null && nonNegative(obj.recoveryS))
    throw new RunRecordError(`${where}.recoveryS: must be null or a number ≥ 0`);
  if (obj.error !== undefined && typeof obj.error !== 'string')
    throw new RunRecordError(`${where}.error: must be a string`);
  return obj as unknown as ReproRunRecord;
}
