import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExperimentResult } from '@lits-ddp/orchestrator';
import { decodeJson, RunSplitFile } from '@lits-ddp/protocol';
import type { PlannedRun, ReproRunRecord } from '@lits-ddp/repro-report';
import type { CrashWatcher } from './repro-crash.js';

/**
 * The ids of the test cases a run was scored on, from its folder's split.json. A run that ended before its data
 * were prepared has no split.json: [] (its record says it failed). A split.json that cannot be read, or does not
 * hold the test cases, is an error naming the file, so a report never shows a run with no test set by mistake.
 */
export async function testCasesOf(runDir: string): Promise<number[]> {
  const file = join(runDir, 'split.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err; // Node's message names the file and the errno
  }
  return decodeJson(RunSplitFile, text, file).testCases.map((c) => c.caseId);
}

/**
 * The study's record of one training: the plan's entry, the run's outcome, test IoUs, hashes, the world size of
 * each generation, and the kill (crash and shrink runs; the shrink run also its recovery time).
 */
export async function recordOf(
  planned: PlannedRun,
  result: ExperimentResult,
  classes: number,
  wallS: number,
  observed: { crash: CrashWatcher | undefined; worldSizes: number[] },
): Promise<ReproRunRecord> {
  const { crash } = observed;
  const metric = (name: string): number | null => {
    const v = result.testMetrics?.[name];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
  const hashes = result.weightHashes ?? [];
  const finished = result.status === 'finished';
  return {
    ...planned,
    status: result.status,
    runId: result.runId,
    seeds: result.seeds,
    iou: Array.from({ length: classes }, (_, c) => metric(`test_iou_${c}`)),
    meanIou: metric('test_mean_iou'),
    weightHash: finished ? (hashes[0] ?? null) : null,
    ranksAgree: hashes.length > 0 && new Set(hashes).size === 1,
    restarts: result.restarts,
    testCases: await testCasesOf(result.runDir),
    wallS: Math.round(wallS * 10) / 10,
    ...(crash ? { killed: crash.killed, resumedFrom: crash.resumedFrom } : {}),
    worldSizes: observed.worldSizes,
    ...(planned.variant === 'shrink' ? { recoveryS: crash?.recoveryS ?? null } : {}),
    ...(result.error ? { error: result.error } : {}),
  };
}

const short = (hash: string | null): string => (hash ? `${hash.slice(0, 12)}…` : '-');

/**
 * One line on a finished training of the study: status, time, test IoUs, weights, for the crash and shrink runs
 * the kill, for the elastic runs the world sizes.
 */
export function describeRun(r: ReproRunRecord): string {
  const iou = r.iou.map((v) => (v === null ? '-' : v.toFixed(4))).join(' / ');
  const sizes =
    r.variant === 'shrink' || r.variant === 'grow'
      ? `, world sizes ${r.worldSizes?.join(' → ') || 'none'}${r.recoveryS != null ? ` (the next generation's first step ${r.recoveryS} s after the kill)` : ''}`
      : '';
  const kill =
    r.variant === 'crash' || r.variant === 'shrink'
      ? `, killed ${r.killed ? `rank ${r.killed.rank} in epoch ${r.killed.epoch}` : 'nobody'}, restarts ${r.restarts}, ${r.resumedFrom ? `resumed from the checkpoint of epoch ${r.resumedFrom.epoch}` : 'no resume from a checkpoint'}`
      : '';
  const extra = `${sizes}${kill}`;
  return `${r.status} in ${r.wallS.toFixed(0)} s: test IoU ${iou}, weights ${short(r.weightHash)}${extra}${r.error ? ` — ${r.error}` : ''}`;
}
