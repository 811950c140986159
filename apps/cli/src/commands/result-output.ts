import type { ExperimentResult } from '@lits-ddp/orchestrator';
import type { RunEngine } from '@lits-ddp/protocol';
import type { DemoOverlay } from './demo-overlay.js';

const SEED_METRICS = ['avg_loss', 'avg_acc', 'mean_iou', 'iou_0', 'iou_1', 'iou_2'];
const PHASES = ['train', 'val', 'test'] as const;

/** The seed's 18 metric names: the last train_* and val_* values and the test_* values. */
export function seedMetrics(result: ExperimentResult): Record<string, number> {
  const all = { ...result.latestMetrics, ...result.testMetrics };
  const out: Record<string, number> = {};
  for (const phase of PHASES) {
    for (const name of SEED_METRICS) {
      const v = all[`${phase}_${name}`];
      if (v !== undefined) out[`${phase}_${name}`] = v;
    }
  }
  return out;
}

/** The engine line of a run, e.g. `node (libtensorflow 2.18.1, 1 intra-op / 1 inter-op thread)`. */
export function engineLine(engine: RunEngine | undefined, libtensorflow?: string): string {
  if (!engine) return '(no generation started)';
  const parts: string[] = [];
  if (libtensorflow) parts.push(`libtensorflow ${libtensorflow}`);
  if (engine.threads)
    parts.push(`${engine.threads.intraOp} intra-op / ${engine.threads.interOp} inter-op thread`);
  if (engine.name === 'cpu') parts.push('pure JS');
  return `${engine.name}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/**
 * The closing table (or, with --json, one JSON line) of a run, with the demo's held-out overlay when there is one;
 * returns the exit code.
 */
export function printResult(result: ExperimentResult, json: boolean, heldOut?: DemoOverlay): number {
  const code = result.status === 'finished' ? 0 : result.status === 'cancelled' ? 130 : 1;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        status: result.status,
        runId: result.runId,
        testMetrics: seedMetrics(result),
        weightHash: result.weightHashes?.[0],
        restarts: result.restarts,
        engine: result.engine ?? null,
        ...(result.libtensorflow ? { libtensorflow: result.libtensorflow } : {}),
        ...(result.engineFallback ? { engineFallback: result.engineFallback } : {}),
        modelPath: result.modelPath,
        runDir: result.runDir,
        tracking: result.tracker,
        ...(heldOut ? { heldOut } : {}),
        ...(result.error ? { error: result.error } : {}),
      })}\n`,
    );
    return code;
  }
  const out: string[] = [
    `\nrun ${result.runId}: ${result.status}${result.error ? ` — ${result.error}` : ''}`,
  ];
  const m = seedMetrics(result);
  if (Object.keys(m).length > 0) {
    const cell = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(4)).padStart(10);
    out.push('', `${'metric'.padEnd(10)}${PHASES.map((p) => p.padStart(10)).join('')}`);
    for (const name of SEED_METRICS)
      out.push(`${name.padEnd(10)}${PHASES.map((p) => cell(m[`${p}_${name}`])).join('')}`);
    out.push('(train and val: last epoch; test: the best-train-loss checkpoint, as the seed)');
  }
  out.push(
    '',
    `engine:   ${engineLine(result.engine, result.libtensorflow)}`,
    ...(result.engineFallback ? [`          fallback: ${result.engineFallback}`] : []),
    `model:    ${result.modelPath ?? '(none)'}`,
    `run:      ${result.tracker.location}${result.tracker.delivered ? '' : ' (some tracking data not delivered)'}`,
    `restarts: ${result.restarts}`,
    ...(heldOut
      ? [
          `overlay:  ${heldOut.png}`,
          `          held-out case ${heldOut.caseId} (${heldOut.tumourVoxels} tumour voxels): ground truth above, prediction below`,
          `mask:     ${heldOut.mask}`,
        ]
      : []),
  );
  process.stderr.write(`${out.join('\n')}\n`);
  return code;
}
