import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { abortRun, cleanupRun } from '@lits-ddp/allreduce';
import {
  microBatchesPerStep,
  runKeys,
  type RunEvent,
  type RunPaths,
  type ResolvedSpec,
} from '@lits-ddp/protocol';
import { LocalRunTracker } from '../tracking/local-tracker.js';
import { MlflowRunTracker } from '../tracking/mlflow-tracker.js';
import type { RunTracker } from '../tracking/run-tracker.js';
import { writeSystemReport } from '../tracking/system-report.js';
import { prepareData } from './prepare-data.js';
import { RunSupervisor, type RunOutcome } from './run-supervisor.js';
import { publishEvent } from './run-events.js';
import { WorkerPool } from './worker-pool.js';

export type ExperimentPhase = 'validating' | 'preprocessing' | 'training' | 'finishing';

export interface ExperimentOptions {
  runId: string;
  spec: ResolvedSpec;
  redis: Redis;
  redisUrl: string;
  /** Folder holding runs/<runId>/ and the default cube cache. */
  home: string;
  /** MLflow server; the run goes to a local run folder when absent. */
  trackingUri?: string;
  preferredWorkers?: string[];
  onWorkersLost?: (workerIds: string[]) => Promise<void>;
  waitForWorkersMs?: number;
  onEvent?: (event: RunEvent) => void;
  onPhase?: (phase: ExperimentPhase, done?: number, total?: number) => void;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  signal?: AbortSignal;
}

export interface ExperimentResult extends RunOutcome {
  runId: string;
  runDir: string;
  seeds: { data: number; model: number };
  tracker: { kind: 'mlflow' | 'local'; runId: string; location: string; delivered: boolean };
}

/** Seeds of a run: fixed by the spec, except in random mode, which draws fresh ones (and logs them). */
export function runSeeds(spec: ResolvedSpec): { data: number; model: number } {
  if (spec.determinism === 'random') return { data: randomInt(2 ** 31), model: randomInt(2 ** 31) };
  return { data: spec['general-seed'], model: spec['pytorch-seed'] };
}

async function createTracker(opts: ExperimentOptions, runDir: string): Promise<RunTracker> {
  if (!opts.trackingUri) return new LocalRunTracker(runDir, opts.runId, opts.spec['run-name'] ?? opts.runId);
  return MlflowRunTracker.create({
    trackingUri: opts.trackingUri,
    experimentName: opts.spec['experiment-name'],
    runName: opts.spec['run-name'] ?? opts.runId,
    tags: { 'lits.runId': opts.runId },
    onError: (m) => opts.log?.('warn', m),
  });
}

/**
 * One experiment end to end: tracking, data validation and preprocessing, supervised training with
 * restarts, artifacts and the final status. The REST service and `lits train` both call this.
 */
export async function runExperiment(opts: ExperimentOptions): Promise<ExperimentResult> {
  const { spec, runId, redis } = opts;
  const runDir = resolve(opts.home, 'runs', runId);
  const paths: RunPaths = {
    runDir,
    cacheDir: resolve(spec['cache-path'] ?? join(opts.home, 'cache')),
    checkpointDir: join(runDir, 'checkpoints'),
  };
  await mkdir(paths.checkpointDir, { recursive: true });
  const seeds = runSeeds(spec);
  const tracker = await createTracker(opts, runDir);
  tracker.logParams({
    ...Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, String(v)])),
    'micro-batches-per-step': microBatchesPerStep(spec),
    'effective-general-seed': seeds.data,
    'effective-pytorch-seed': seeds.model,
  });
  tracker.setTags({
    mode: spec.determinism,
    determinism: spec.determinism,
    world_size: String(spec.workers),
    'lits.runId': runId,
  });
  await writeFile(join(runDir, 'spec.json'), `${JSON.stringify(spec, null, 2)}\n`);
  tracker.logArtifact(join(runDir, 'spec.json'));

  const pool = new WorkerPool(redis);
  let outcome: RunOutcome;
  try {
    await redis.set(runKeys.status(runId), 'preparing');
    await publishEvent(redis, runId, { type: 'status', status: 'preparing', restarts: 0 });
    opts.onPhase?.('validating');
    const data = await prepareData(spec, {
      datasetPath: resolve(spec['dataset-path']),
      cacheDir: paths.cacheDir,
      dataSeed: seeds.data,
      onValidate: (d, t) => opts.onPhase?.('validating', d, t),
      onPreprocess: (p) => opts.onPhase?.('preprocessing', p.done, p.total),
    });
    tracker.setTags({ split: data.split, layout: data.layout });
    await writeFile(
      join(runDir, 'split.json'),
      `${JSON.stringify({ split: data.split, trainCases: data.trainCases, testCases: data.testCases, cacheDir: paths.cacheDir }, null, 2)}\n`,
    );
    tracker.logArtifact(join(runDir, 'split.json'));
    tracker.logParams({ 'train-cases': data.trainCases.length, 'test-cases': data.testCases.length });
    opts.onPhase?.('training');
    let engineTagged = false;
    const supervisor = new RunSupervisor(
      { runId, spec, seeds, trainCases: data.trainCases, testCases: data.testCases, paths },
      {
        redis,
        pool,
        tracker,
        abortCollectives: async (id, generation, reason) => {
          await abortRun({ redis: opts.redisUrl, runId: id, generation, reason });
        },
        ...(opts.preferredWorkers ? { preferredWorkers: opts.preferredWorkers } : {}),
        ...(opts.onWorkersLost ? { onWorkersLost: opts.onWorkersLost } : {}),
        ...(opts.waitForWorkersMs ? { waitForWorkersMs: opts.waitForWorkersMs } : {}),
        onEvent: (event) => {
          if (event.type === 'started' && !engineTagged) {
            engineTagged = true;
            tracker.setTags({ engine: event.engine });
          }
          opts.onEvent?.(event);
        },
        ...(opts.log ? { log: opts.log } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
    );
    outcome = await supervisor.run();
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    await redis.set(runKeys.status(runId), 'failed');
    await publishEvent(redis, runId, { type: 'status', status: 'failed', message: error, restarts: 0 });
    outcome = { status: 'failed', restarts: 0, generation: 0, error };
  }

  opts.onPhase?.('finishing');
  await writeSystemReport(pool, runDir, runId, outcome.workers ?? []).catch((e: unknown) =>
    opts.log?.('warn', `system report: ${String(e)}`),
  );
  for (const [file, dir] of [
    ['system_report.json', 'reports'],
    ['system_report.html', 'reports'],
    ['model_summary.txt', ''],
  ] as const) {
    if (existsSync(join(runDir, file))) tracker.logArtifact(join(runDir, file), dir);
  }
  for (const name of ['final', 'best']) {
    const dir = join(paths.checkpointDir, name);
    if (existsSync(dir)) tracker.logArtifact(dir, `checkpoints/${name}`);
  }
  if (outcome.modelPath && existsSync(outcome.modelPath)) tracker.logArtifact(outcome.modelPath, 'model');
  if (outcome.status === 'failed' && outcome.error)
    tracker.setTags({ 'lits.error': outcome.error.slice(0, 4000) });
  const finished = await tracker.finish(
    outcome.status === 'finished' ? 'FINISHED' : outcome.status === 'cancelled' ? 'KILLED' : 'FAILED',
  );
  if (!finished.delivered)
    opts.log?.(
      'warn',
      `tracking incomplete: ${finished.pending} item(s) not delivered (${finished.lastError})`,
    );
  await cleanupRun({ redis: opts.redisUrl, runId }).catch(() => undefined);
  return {
    ...outcome,
    runId,
    runDir,
    seeds,
    tracker: {
      kind: tracker.kind,
      runId: tracker.trackingRunId,
      location: tracker.location,
      delivered: finished.delivered,
    },
  };
}
