import { randomInt } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { abortRun, cleanupRun } from '@lits-ddp/allreduce';
import { errorMessage } from '@lits-ddp/errors';
import { detectGitCommit } from '@lits-ddp/mlflow-client';
import {
  decodeJson,
  microBatchesPerStep,
  runKeys,
  RunPlan,
  type RunPaths,
  type RunSeeds,
  RUN_KEYS_TTL_S,
  type RunSplitFile,
  type ResolvedSpec,
} from '@lits-ddp/protocol';
import { RunCancelledError, RunDetachedError } from '../errors.js';
import { LocalRunTracker } from '../tracking/local-tracker.js';
import { MlflowRunTracker } from '../tracking/mlflow-tracker.js';
import type { RunTracker } from '../tracking/run-tracker.js';
import { writeSystemReport } from '../tracking/system-report.js';
import { prepareData, type PreparedData } from './prepare-data.js';
import { decodeExperimentResult, type ExperimentResult, type RunOutcome } from './run-outcome.js';
import { RunSupervisor } from './run-supervisor.js';
import type { SupervisorOptions } from './supervisor-options.js';
import { loadRunRecord, saveRunRecord, type RunRecord } from './run-record.js';
import { publishEvent } from './run-events.js';
import { WorkerPool } from './worker-pool.js';

export type ExperimentPhase = 'validating' | 'preprocessing' | 'training' | 'finishing';

/** The supervisor's options a caller of runExperiment hands through unchanged. */
const SUPERVISOR_PASS_THROUGH = [
  'preferredWorkers',
  'exclusiveWorkers',
  'fail',
  'onWorkersLost',
  'waitForWorkersMs',
  'mayGrow',
  'onEvent',
  'log',
  'signal',
  'detach',
] as const satisfies readonly (keyof SupervisorOptions)[];

export interface ExperimentOptions extends Pick<SupervisorOptions, (typeof SUPERVISOR_PASS_THROUGH)[number]> {
  runId: string;
  spec: ResolvedSpec;
  redis: Redis;
  redisUrl: string;
  /** Folder holding runs/<runId>/ and the default cube cache. */
  home: string;
  /** MLflow server; the run goes to a local run folder when absent. */
  trackingUri?: string;
  onPhase?: (phase: ExperimentPhase, done?: number, total?: number) => void;
}

/** Seeds of a run: fixed by the spec, except in random mode, which draws fresh ones (and logs them). */
export function runSeeds(spec: ResolvedSpec): RunSeeds {
  if (spec.determinism === 'random') return { data: randomInt(2 ** 31), model: randomInt(2 ** 31) };
  return { data: spec['general-seed'], model: spec['pytorch-seed'] };
}

/** The commit of the code that runs: LITS_GIT_COMMIT (images), else the checkout this module lives in. */
function codeGitCommit(): string | undefined {
  return detectGitCommit(fileURLToPath(new URL('.', import.meta.url)));
}

function runPaths(opts: ExperimentOptions): RunPaths {
  const runDir = resolve(opts.home, 'runs', opts.runId);
  return {
    runDir,
    cacheDir: resolve(opts.spec['cache-path'] ?? join(opts.home, 'cache')),
    checkpointDir: join(runDir, 'checkpoints'),
  };
}

async function openTracker(
  opts: ExperimentOptions,
  runDir: string,
  known: RunRecord['tracker'],
  gitCommit: string | undefined,
): Promise<RunTracker> {
  const onError = (m: string): void => opts.log?.('warn', m);
  if (known?.kind === 'local') return LocalRunTracker.attach(runDir, known.runId);
  if (known?.kind === 'mlflow')
    return MlflowRunTracker.attach({ trackingUri: opts.trackingUri, runId: known.runId, onError });
  if (!opts.trackingUri) return new LocalRunTracker(runDir, opts.runId, opts.spec['run-name'] ?? opts.runId);
  return MlflowRunTracker.create({
    trackingUri: opts.trackingUri,
    experimentName: opts.spec['experiment-name'],
    runName: opts.spec['run-name'] ?? opts.runId,
    tags: { 'lits.runId': opts.runId },
    gitCommit: gitCommit ?? null,
    onError,
  });
}

/**
 * The run's tracking run: the recorded one when the run goes on, else a new one, recorded before
 * anything is logged to it, with the spec, the seeds actually used and the run's tags.
 */
async function startTracking(
  opts: ExperimentOptions,
  runDir: string,
  record: RunRecord | undefined,
  seeds: RunSeeds,
): Promise<RunTracker> {
  const { spec, runId, redis } = opts;
  const gitCommit = codeGitCommit();
  const tracker = await openTracker(opts, runDir, record?.tracker, gitCommit);
  if (!record?.tracker) {
    await saveRunRecord(redis, runId, {
      tracker: { kind: tracker.kind, runId: tracker.trackingRunId, location: tracker.location },
    });
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
      ...(gitCommit ? { git_commit: gitCommit } : {}),
    });
  } else
    opts.log?.(
      'info',
      `continuing run ${runId} (tracking run ${record.tracker.runId}, phase ${record.phase})`,
    );
  await writeFile(join(runDir, 'spec.json'), `${JSON.stringify(spec, null, 2)}\n`);
  tracker.logArtifact(join(runDir, 'spec.json'));
  return tracker;
}

/** How often a preparing run reads its cancel key (the supervisor watches it once the preparation is done). */
const CANCEL_POLL_MS = 250;

/**
 * Aborted when the run is cancelled while its data is prepared: by the caller's signal, or by its cancel key (a
 * DELETE through the coordinator), read every CANCEL_POLL_MS; and when the coordinator detaches (it shuts
 * down: the next one prepares the data again, from the cube cache). `stop` ends the watch.
 */
function watchCancel(opts: ExperimentOptions): { signal: AbortSignal; stop: () => void } {
  const cancel = new AbortController();
  const onSignal = (): void => cancel.abort(String(opts.signal?.reason ?? 'cancelled'));
  const onDetach = (): void => cancel.abort(String(opts.detach?.reason ?? 'detached'));
  opts.signal?.addEventListener('abort', onSignal, { once: true });
  opts.detach?.addEventListener('abort', onDetach, { once: true });
  if (opts.signal?.aborted) onSignal();
  if (opts.detach?.aborted) onDetach();
  const key = runKeys.cancel(opts.runId);
  let reading = false;
  const poll = setInterval(() => {
    if (reading || cancel.signal.aborted) return;
    reading = true;
    opts.redis
      .get(key)
      .then((reason) => {
        if (reason !== null) cancel.abort(reason);
      })
      // A missed read is retried at the next tick; the supervisor reads the key again after the preparation.
      .catch((err: unknown) => opts.log?.('warn', `could not read ${key}: ${errorMessage(err)}`))
      .finally(() => {
        reading = false;
      });
  }, CANCEL_POLL_MS);
  return {
    signal: cancel.signal,
    stop: () => {
      clearInterval(poll);
      opts.signal?.removeEventListener('abort', onSignal);
      opts.detach?.removeEventListener('abort', onDetach);
    },
  };
}

/**
 * Validates and preprocesses the data set, and records the split (split.json, tags, params). A cancel stops the
 * preparation at once and rejects with RunCancelledError (the cubes made so far stay in the cache).
 */
async function prepareRunData(
  opts: ExperimentOptions,
  paths: RunPaths,
  seeds: RunSeeds,
  tracker: RunTracker,
): Promise<Pick<RunPlan, 'trainCases' | 'testCases'>> {
  const { spec, runId, redis } = opts;
  const cancelledBefore = await redis.get(runKeys.cancel(runId));
  if (cancelledBefore !== null) throw new RunCancelledError(cancelledBefore);
  await redis.set(runKeys.status(runId), 'preparing');
  await publishEvent(redis, runId, { type: 'status', status: 'preparing', restarts: 0 });
  opts.onPhase?.('validating');
  const cancel = watchCancel(opts);
  let prepared: PreparedData;
  try {
    prepared = await prepareData(spec, {
      datasetPath: resolve(spec['dataset-path']),
      cacheDir: paths.cacheDir,
      dataSeed: seeds.data,
      onValidate: (d, t) => opts.onPhase?.('validating', d, t),
      onPreprocess: (p) => opts.onPhase?.('preprocessing', p.done, p.total),
      signal: cancel.signal,
    });
  } catch (err) {
    if (opts.detach?.aborted) throw new RunDetachedError(String(opts.detach.reason ?? 'detached'));
    if (cancel.signal.aborted) throw new RunCancelledError(String(cancel.signal.reason));
    throw err;
  } finally {
    cancel.stop();
  }
  tracker.setTags({ split: prepared.split, layout: prepared.layout });
  const splitFile = join(paths.runDir, 'split.json');
  const splitRecord: RunSplitFile = {
    split: prepared.split,
    trainCases: prepared.trainCases,
    testCases: prepared.testCases,
    cacheDir: paths.cacheDir,
  };
  await writeFile(splitFile, `${JSON.stringify(splitRecord, null, 2)}\n`);
  tracker.logArtifact(splitFile);
  tracker.logParams({
    'train-cases': prepared.trainCases.length,
    'test-cases': prepared.testCases.length,
  });
  return prepared;
}

interface RunState {
  record: RunRecord | undefined;
  seeds: RunSeeds;
  paths: RunPaths;
  tracker: RunTracker;
  pool: WorkerPool;
}

/**
 * Prepares the data (or, for a run whose plan is in Redis, takes its cases from the plan) and
 * supervises the training to its outcome.
 */
async function superviseTraining(opts: ExperimentOptions, state: RunState): Promise<RunOutcome> {
  const { spec, runId, redis } = opts;
  const { seeds, paths, tracker } = state;
  const rawPlan = state.record ? await redis.get(runKeys.plan(runId)) : null;
  const adopt = rawPlan !== null;
  const data = adopt
    ? decodeJson(RunPlan, rawPlan, `run plan ${runKeys.plan(runId)}`)
    : await prepareRunData(opts, paths, seeds, tracker);
  if (adopt && existsSync(join(paths.runDir, 'split.json')))
    tracker.logArtifact(join(paths.runDir, 'split.json'));
  await saveRunRecord(redis, runId, { phase: 'training' });
  opts.onPhase?.('training');
  const supervisor = new RunSupervisor(
    { runId, spec, seeds, trainCases: data.trainCases, testCases: data.testCases, paths },
    {
      redis,
      pool: state.pool,
      tracker,
      adopt,
      abortCollectives: async (id, generation, reason) => {
        await abortRun({ redis: opts.redisUrl, runId: id, generation, reason });
      },
      // Unset, false and 0 leave the supervisor's defaults.
      ...Object.fromEntries(SUPERVISOR_PASS_THROUGH.filter((k) => opts[k]).map((k) => [k, opts[k]])),
    },
  );
  return supervisor.run();
}

/**
 * The outcome of a run that ended before or outside its supervision: failed (bad data, a corrupt plan, …) or
 * cancelled while its data was prepared.
 */
async function unsupervisedOutcome(
  redis: Redis,
  runId: string,
  status: 'failed' | 'cancelled',
  error: string,
): Promise<RunOutcome> {
  await redis.set(runKeys.status(runId), status);
  await publishEvent(redis, runId, { type: 'status', status, message: error, restarts: 0 });
  // The expiry the supervisor gives the keys of the runs it ends.
  for (const key of [runKeys.events(runId), runKeys.status(runId)])
    await redis.expire(key, RUN_KEYS_TTL_S).catch(() => undefined);
  return { status, restarts: 0, generation: 0, error };
}

/** The system report, the model summary, the checkpoints and the exported model, to the tracker. */
async function logRunArtifacts(opts: ExperimentOptions, state: RunState, outcome: RunOutcome): Promise<void> {
  const { paths, tracker } = state;
  const { runDir } = paths;
  await writeSystemReport(state.pool, runDir, opts.runId, outcome.workers ?? []).catch((e: unknown) =>
    opts.log?.('warn', `system report: ${errorMessage(e)}`),
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
  if (outcome.modelPath && existsSync(outcome.modelPath)) {
    // The worker reports model.json; the export is its folder (model.json + weights).
    const dir = statSync(outcome.modelPath).isDirectory() ? outcome.modelPath : dirname(outcome.modelPath);
    tracker.logArtifact(dir, 'model');
  }
}

/** Ends the tracking run with the outcome's status; says so when not everything was delivered. */
async function finishTracking(
  opts: ExperimentOptions,
  tracker: RunTracker,
  outcome: RunOutcome,
): Promise<boolean> {
  if (outcome.status === 'failed' && outcome.error)
    tracker.setTags({ 'lits.error': outcome.error.slice(0, 4000) });
  const finished = await tracker.finish(
    outcome.status === 'finished' ? 'FINISHED' : outcome.status === 'cancelled' ? 'KILLED' : 'FAILED',
  );
  if (!finished.delivered)
    opts.log?.(
      'warn',
      `tracking incomplete: ${finished.pending} item(s) not delivered${finished.rejected ? `, ${finished.rejected} refused by the server` : ''} (${finished.lastError})`,
    );
  return finished.delivered;
}

/**
 * One experiment end to end: tracking, data validation and preprocessing, supervised training with
 * restarts, artifacts and the final status. The REST service and `lits train` both call this.
 *
 * Resumable: the seeds, the tracking run and the phase are kept in a Redis run record, so a
 * coordinator that calls this again for a run whose coordinator died continues that run (same
 * tracking run, training adopted from the event stream) instead of starting a second one. A record
 * that does not decode rejects with an error naming its key: the run is not started again.
 */
export async function runExperiment(opts: ExperimentOptions): Promise<ExperimentResult> {
  const { spec, runId, redis } = opts;
  const record = await loadRunRecord(redis, runId);
  if (record?.phase === 'done' && record.result)
    return decodeExperimentResult(record.result, `run record ${runKeys.record(runId)}, field result`);
  const paths = runPaths(opts);
  await mkdir(paths.checkpointDir, { recursive: true });
  const seeds = record?.seeds ?? runSeeds(spec);
  if (!record) await saveRunRecord(redis, runId, { seeds, phase: 'preparing' });
  const tracker = await startTracking(opts, paths.runDir, record, seeds);
  const log = opts.log;
  const pool = new WorkerPool(redis, log ? { warn: (message) => log('warn', message) } : {});
  const state: RunState = { record, seeds, paths, tracker, pool };
  let outcome: RunOutcome;
  try {
    outcome = await superviseTraining(opts, state);
  } catch (err) {
    if (err instanceof RunDetachedError) {
      // Hand over as much as can be delivered quickly; the next coordinator re-derives the rest.
      await tracker.flush(5000).catch(() => undefined);
      throw err;
    }
    // Only the preparation throws RunCancelledError: a cancel during training is the supervisor's outcome.
    const status = err instanceof RunCancelledError ? 'cancelled' : 'failed';
    outcome = await unsupervisedOutcome(redis, runId, status, errorMessage(err));
  }
  await saveRunRecord(redis, runId, { phase: 'finishing' });

  opts.onPhase?.('finishing');
  await logRunArtifacts(opts, state, outcome);
  const delivered = await finishTracking(opts, tracker, outcome);
  await cleanupRun({ redis: opts.redisUrl, runId }).catch(() => undefined);
  const result: ExperimentResult = {
    ...outcome,
    runId,
    runDir: paths.runDir,
    seeds,
    tracker: { kind: tracker.kind, runId: tracker.trackingRunId, location: tracker.location, delivered },
  };
  await saveRunRecord(redis, runId, { phase: 'done', result: JSON.stringify(result) });
  return result;
}
