import type { ReproMode, ReproRunRecord, RunVariant } from '../src/index.js';

/** A finished run record with the given IoUs and hash. */
export function record(
  mode: ReproMode,
  index: number,
  iou: Array<number | null>,
  weightHash: string | null,
  extra: Partial<ReproRunRecord> & { variant?: RunVariant } = {},
): ReproRunRecord {
  const present = iou.filter((v): v is number => v !== null);
  return {
    mode,
    variant: 'repeat',
    index,
    workers: 2,
    status: 'finished',
    runId: `run-${mode}-${index}`,
    seeds: { data: 0, model: 0 },
    iou,
    meanIou: present.length > 0 ? present.reduce((s, v) => s + v, 0) / present.length : null,
    weightHash,
    ranksAgree: true,
    restarts: 0,
    testCases: [17, 27, 38],
    wallS: 12.5,
    ...extra,
  };
}

/**
 * 3 random runs (all different), 3 seed runs (same bits), 3 deterministic + N=1, N=4, a crash run and the
 * elastic runs (shrink 2 → 1, grow 1 → 2).
 */
export function studyRecords(): ReproRunRecord[] {
  const det = [0.968323, 0.819755, 0.496114];
  return [
    record('random', 1, [0.96, 0.8, 0.4], 'r1'),
    record('random', 2, [0.97, 0.82, 0.5], 'r2'),
    record('random', 3, [0.965, 0.84, 0.3], 'r3'),
    record('seed', 1, [0.95, 0.81, 0.45], 's'),
    record('seed', 2, [0.95, 0.81, 0.45], 's'),
    record('seed', 3, [0.95, 0.81, 0.45], 's'),
    record('deterministic', 1, det, 'd'),
    record('deterministic', 2, det, 'd'),
    record('deterministic', 3, det, 'd'),
    record('deterministic', 1, det, 'd', { variant: 'world-size', workers: 1 }),
    record('deterministic', 1, det, 'd', { variant: 'world-size', workers: 4 }),
    record('deterministic', 1, det, 'd', {
      variant: 'crash',
      restarts: 1,
      killed: { rank: 1, epoch: 20 },
      resumedFrom: { epoch: 19 },
    }),
    record('deterministic', 1, det, 'd', {
      variant: 'shrink',
      minWorkers: 1,
      maxWorkers: 2,
      restarts: 1,
      killed: { rank: 1, epoch: 22 },
      resumedFrom: { epoch: 19 },
      worldSizes: [2, 1],
      recoveryS: 4.25,
    }),
    record('deterministic', 1, det, 'd', {
      variant: 'grow',
      workers: 1,
      minWorkers: 1,
      maxWorkers: 2,
      worldSizes: [1, 2],
    }),
  ];
}
