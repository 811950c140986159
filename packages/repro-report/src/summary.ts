import {
  ELASTIC_VARIANTS,
  REPRO_MODES,
  type ElasticVariant,
  type ReproMode,
  type ReproRunRecord,
  type RunStatus,
  type RunVariant,
} from './run-record.js';
import { sampleStats, type SampleStats } from './statistics.js';

/** The seed's three classes; other class counts are named by label. */
export function classNamesOf(classes: number): string[] {
  return classes === 3
    ? ['background', 'liver', 'tumour']
    : Array.from({ length: classes }, (_, c) => `class ${c}`);
}

export interface ModeSummary {
  mode: ReproMode;
  /** Repeated runs of this mode (variant "repeat"), and how many finished. */
  runs: number;
  finished: number;
  /** World sizes of the repeated runs. */
  workers: number[];
  /** Over the finished repeated runs, by metric name (`iou_0` … and `mean_iou`); null without values. */
  iou: Record<string, SampleStats | null>;
  /** Distinct final weight hashes over every finished run of this mode (all variants). */
  distinctHashes: number;
}

export interface CrashSummary {
  runs: number;
  /** Runs in which the worker was actually killed. */
  killed: number;
  restarts: number[];
  /** Crash runs whose restart resumed from a checkpoint (not from scratch). */
  resumed: number;
  /** Per crash run: the epoch of the checkpoint it resumed from; null: from scratch, or not recorded. */
  resumedFrom: Array<number | null>;
  /** Final hash equal to the uninterrupted deterministic runs at the same world size (null: nothing to compare). */
  matchesUninterrupted: boolean | null;
}

/** One elastic run: the sizes it ran at and whether it ended where the uninterrupted runs did. */
export interface ElasticRunSummary {
  variant: ElasticVariant;
  status: RunStatus;
  /** The world size of each generation, in order (shrink: [N, N − 1]; grow: [⌊N/2⌋, N]). */
  worldSizes: number[];
  /** Shrink: seconds from the kill to the first step of the shrunk generation; null for grow or when not seen. */
  recoveryS: number | null;
  /**
   * Final hash equal to that of every uninterrupted deterministic run, at any world size (null: it did not
   * finish, or nothing to compare with).
   */
  matchesUninterrupted: boolean | null;
}

export interface ElasticSummary {
  runs: ElasticRunSummary[];
  /** False when any elastic run ended with other weights; null when none could be compared. */
  matchesUninterrupted: boolean | null;
}

export interface ReproSummary {
  classNames: string[];
  /** `iou_0` … `iou_{C−1}`, `mean_iou`. */
  metricNames: string[];
  modes: ModeSummary[];
  distinctHashes: Partial<Record<ReproMode, number>>;
  /** Distinct final hashes of the deterministic runs at each world size. */
  deterministicByWorldSize: Record<string, number>;
  crash: CrashSummary | null;
  elastic: ElasticSummary | null;
  /** Distinct test splits among the finished runs (1: every run was scored on the same cases). */
  testSets: number;
  /** Finished runs whose ranks ended with different weights. */
  ranksDisagree: number;
  failed: Array<{
    mode: ReproMode;
    variant: RunVariant;
    index: number;
    workers: number;
    status: RunStatus;
    error?: string;
  }>;
}

const distinct = (values: Array<string | null>): number =>
  new Set(values.filter((v): v is string => v !== null)).size;

const finishedOf = (runs: readonly ReproRunRecord[]): ReproRunRecord[] =>
  runs.filter((r) => r.status === 'finished');

const isElastic = (r: ReproRunRecord): boolean => (ELASTIC_VARIANTS as readonly string[]).includes(r.variant);
/** A run at one world size from start to end: a repeat or a run at another world size. */
const isUninterrupted = (r: ReproRunRecord): boolean => r.variant === 'repeat' || r.variant === 'world-size';

/**
 * The elastic runs against the uninterrupted deterministic runs (repeats and other world sizes): the
 * deterministic promise holds at any world size, so a run that changed size must end on their one hash.
 */
function summariseElastic(runs: readonly ReproRunRecord[]): ElasticSummary | null {
  const elastic = runs.filter(isElastic);
  if (elastic.length === 0) return null;
  const reference = finishedOf(runs)
    .filter((r) => r.mode === 'deterministic' && isUninterrupted(r))
    .map((r) => r.weightHash);
  const summaries = elastic.map((r): ElasticRunSummary => ({
    variant: r.variant as ElasticVariant,
    status: r.status,
    worldSizes: r.worldSizes ?? [],
    recoveryS: r.recoveryS ?? null,
    matchesUninterrupted:
      r.status !== 'finished' || reference.length === 0
        ? null
        : distinct(reference) === 1 && reference[0] === r.weightHash,
  }));
  const matches = summaries.map((s) => s.matchesUninterrupted);
  return {
    runs: summaries,
    matchesUninterrupted: matches.includes(false) ? false : matches.includes(null) ? null : true,
  };
}

/** The numbers of the report: IoU statistics of the repeated runs per mode, and the weight-hash counts. */
export function summariseRuns(runs: readonly ReproRunRecord[]): ReproSummary {
  const classes = runs[0]?.iou.length ?? 3;
  const metricNames = [...Array.from({ length: classes }, (_, c) => `iou_${c}`), 'mean_iou'];
  const modes: ModeSummary[] = [];
  const distinctHashes: Partial<Record<ReproMode, number>> = {};
  for (const mode of REPRO_MODES) {
    const all = runs.filter((r) => r.mode === mode);
    if (all.length === 0) continue;
    const repeats = all.filter((r) => r.variant === 'repeat');
    const done = finishedOf(repeats);
    const iou: Record<string, SampleStats | null> = {};
    metricNames.forEach((name, c) => {
      const values = done
        .map((r) => (c < classes ? r.iou[c] : r.meanIou))
        .filter((v): v is number => v !== null && v !== undefined);
      iou[name] = sampleStats(values);
    });
    const hashes = distinct(finishedOf(all).map((r) => r.weightHash));
    distinctHashes[mode] = hashes;
    modes.push({
      mode,
      runs: repeats.length,
      finished: done.length,
      workers: [...new Set(repeats.map((r) => r.workers))].sort((a, b) => a - b),
      iou,
      distinctHashes: hashes,
    });
  }

  const deterministic = finishedOf(runs.filter((r) => r.mode === 'deterministic'));
  // An elastic run has no one world size: it is compared on its own (summariseElastic).
  const fixedSize = deterministic.filter((r) => !isElastic(r));
  const deterministicByWorldSize: Record<string, number> = {};
  for (const n of [...new Set(fixedSize.map((r) => r.workers))].sort((a, b) => a - b)) {
    deterministicByWorldSize[String(n)] = distinct(
      fixedSize.filter((r) => r.workers === n).map((r) => r.weightHash),
    );
  }

  const crashRuns = runs.filter((r) => r.variant === 'crash');
  let crash: CrashSummary | null = null;
  if (crashRuns.length > 0) {
    const comparisons = finishedOf(crashRuns).map((c) => {
      const reference = deterministic
        .filter((r) => isUninterrupted(r) && r.workers === c.workers && r.mode === c.mode)
        .map((r) => r.weightHash);
      if (reference.length === 0) return null;
      return distinct(reference) === 1 && reference[0] === c.weightHash;
    });
    crash = {
      runs: crashRuns.length,
      killed: crashRuns.filter((r) => r.killed).length,
      restarts: crashRuns.map((r) => r.restarts),
      resumed: crashRuns.filter((r) => r.resumedFrom).length,
      resumedFrom: crashRuns.map((r) => r.resumedFrom?.epoch ?? null),
      matchesUninterrupted:
        comparisons.length === 0 || comparisons.includes(null) ? null : comparisons.every((m) => m === true),
    };
  }

  const finished = finishedOf(runs);
  return {
    classNames: classNamesOf(classes),
    metricNames,
    modes,
    distinctHashes,
    deterministicByWorldSize,
    crash,
    elastic: summariseElastic(runs),
    testSets: new Set(finished.map((r) => r.testCases.join(','))).size,
    ranksDisagree: finished.filter((r) => !r.ranksAgree).length,
    failed: runs
      .filter((r) => r.status !== 'finished')
      .map((r) => ({
        mode: r.mode,
        variant: r.variant,
        index: r.index,
        workers: r.workers,
        status: r.status,
        ...(r.error ? { error: r.error } : {}),
      })),
  };
}

export interface ReproJsonLine {
  distinctHashes: Partial<Record<ReproMode, number>> & { deterministicByWorldSize: Record<string, number> };
  /** Mean and sample sd of the repeated runs, by mode and metric (`iou_0` … `mean_iou`). */
  iou: Partial<Record<ReproMode, Record<string, { mean: number; sd: number; n: number } | null>>>;
  classNames: string[];
  crash: CrashSummary | null;
  elastic: ElasticSummary | null;
  testSets: number;
  failed: number;
}

/** The compact summary behind `lits repro --json`. */
export function summaryJson(summary: ReproSummary): ReproJsonLine {
  const iou: ReproJsonLine['iou'] = {};
  for (const m of summary.modes) {
    iou[m.mode] = Object.fromEntries(
      Object.entries(m.iou).map(([name, s]) => [name, s ? { mean: s.mean, sd: s.sd, n: s.n } : null]),
    );
  }
  return {
    distinctHashes: { ...summary.distinctHashes, deterministicByWorldSize: summary.deterministicByWorldSize },
    iou,
    classNames: summary.classNames,
    crash: summary.crash,
    elastic: summary.elastic,
    testSets: summary.testSets,
    failed: summary.failed.length,
  };
}
