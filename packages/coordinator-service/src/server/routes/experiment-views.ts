import { readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  decodeJson,
  runEventOfFields,
  runKeys,
  type ExperimentDetail,
  type ExperimentProgress,
  type ExperimentSummary,
  type RunEvent,
} from '@lits-ddp/protocol';
import { loadRunRecord } from '@lits-ddp/orchestrator';
import type { ExperimentRecord } from '../../queue/experiment-store.js';
import { PlanRanks } from '../../queue/stored-schemas.js';
import type { AppContext } from '../app-context.js';

const iso = (ms: number | undefined): string | undefined => (ms ? new Date(ms).toISOString() : undefined);

export const linksOf = (id: string): Record<string, string> => ({
  self: `/v1/experiments/${id}`,
  events: `/v1/experiments/${id}/events`,
  metrics: `/v1/experiments/${id}/metrics`,
  dashboard: `/#${id}`,
});

export function toSummary(rec: ExperimentRecord): ExperimentSummary {
  const worldSize = rec.generations?.at(-1)?.worldSize;
  return {
    id: rec.id,
    status: rec.status,
    priority: rec.priority,
    workers: rec.spec.workers,
    experimentName: rec.spec['experiment-name'],
    ...(rec.spec['run-name'] ? { runName: rec.spec['run-name'] } : {}),
    submittedAt: iso(rec.submittedAt) as string,
    ...(rec.startedAt ? { startedAt: iso(rec.startedAt) } : {}),
    ...(rec.endedAt ? { endedAt: iso(rec.endedAt) } : {}),
    restarts: rec.restarts,
    ...(worldSize !== undefined ? { worldSize } : {}),
    ...(rec.latestMetrics ? { latestMetrics: rec.latestMetrics } : {}),
  };
}

type ProgressEvent = Extract<RunEvent, { type: 'progress' }>;

/** What the run's ranks do now: the current generation's steps, or that none has reported one yet. */
interface LiveState {
  progress?: ExperimentProgress;
  resuming?: ExperimentDetail['resuming'];
}

/**
 * The newest step of each rank of the current generation, from the tail of the run's stream: an
 * earlier generation's ranks (more of them, before a shrink) are gone. While the current generation
 * runs and none of its ranks has reported a step, it is resuming (loading its checkpoint).
 */
async function liveStateOf(ctx: AppContext, rec: ExperimentRecord): Promise<LiveState> {
  const entries = (await ctx.redis.xrevrange(runKeys.events(rec.id), '+', '-', 'COUNT', 200)) as Array<
    [string, string[]]
  >;
  const steps = entries
    .map(([, fields]) => runEventOfFields(fields))
    .filter((e): e is ProgressEvent => e?.type === 'progress');
  const current = rec.generations?.at(-1);
  // A record without generations (a run of an older coordinator): the newest one that reported a step.
  const generation = current?.generation ?? Math.max(0, ...steps.map((e) => e.generation));
  const byRank = new Map<number, ProgressEvent>();
  for (const e of steps) if (e.generation === generation && !byRank.has(e.rank)) byRank.set(e.rank, e);
  const ranks = [...byRank.values()].sort((a, b) => a.rank - b.rank);
  const head = ranks[0];
  if (!head) {
    if (rec.status !== 'running' || !current) return {};
    const { worldSize, resumeEpoch } = current;
    return { resuming: { generation, worldSize, resumeEpoch, since: iso(current.at) as string } };
  }
  const epochs = rec.spec.max_epochs;
  const done = head.epoch * head.stepsPerEpoch + head.step + 1;
  return {
    progress: {
      epoch: head.epoch,
      epochs,
      step: head.step,
      stepsPerEpoch: head.stepsPerEpoch,
      fraction: Math.min(1, done / (epochs * head.stepsPerEpoch)),
      loss: head.loss,
      ranks: ranks.map((r) => ({ rank: r.rank, epoch: r.epoch, step: r.step, loss: r.loss })),
    },
  };
}

/** The folder of the tfjs export: workers report the path of its model.json. */
export const modelDirOf = (modelPath: string): string =>
  modelPath.endsWith('.json') ? dirname(modelPath) : modelPath;

/** A path that is not there (yet): the run has not written it. Any other file-system error is real. */
const isMissing = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
};

/** Files of the tfjs model export (model.json and its weight shards); none before the run wrote it. */
export async function modelFiles(path: string): Promise<Array<{ name: string; bytes: number }>> {
  let names: string[];
  try {
    names = (await readdir(path)).sort();
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
  const out: Array<{ name: string; bytes: number }> = [];
  for (const name of names) {
    const s = await stat(join(path, name));
    if (s.isFile()) out.push({ name, bytes: s.size });
  }
  return out;
}

/** Checkpoint folders of a run, in the order `lits predict --model <run folder>` picks them. */
const CHECKPOINT_PREFERENCE = ['best', 'final', 'last'] as const;
/** The manifest @lits-ddp/unet writes into every checkpoint folder; `lits predict` looks for it. */
const CHECKPOINT_MANIFEST = 'checkpoint.json';
/** The checkpoints runExperiment logs to MLflow (the rolling `last` one is not logged). */
const LOGGED_CHECKPOINTS: ReadonlySet<string> = new Set(['best', 'final']);

type ModelView = NonNullable<ExperimentDetail['model']>;

/** The checkpoint folder `lits predict --model` loads for this run (best, else final, else last). */
async function predictCheckpoint(
  ctx: AppContext,
  id: string,
  mlflowRunId: string | undefined,
): Promise<ModelView['checkpoint']> {
  const dir = join(resolve(ctx.options.home), 'runs', id, 'checkpoints');
  for (const kind of CHECKPOINT_PREFERENCE) {
    const path = join(dir, kind);
    const manifest = await stat(join(path, CHECKPOINT_MANIFEST)).catch((err: unknown) => {
      if (isMissing(err)) return undefined;
      throw err;
    });
    if (!manifest?.isFile()) continue;
    return {
      path,
      kind,
      ...(mlflowRunId && LOGGED_CHECKPOINTS.has(kind)
        ? { artifact: `runs:/${mlflowRunId}/checkpoints/${kind}` }
        : {}),
    };
  }
  return undefined;
}

export async function toDetail(ctx: AppContext, rec: ExperimentRecord): Promise<ExperimentDetail> {
  const [live, runRecord, position, planRaw] = await Promise.all([
    rec.status === 'queued' ? undefined : liveStateOf(ctx, rec),
    loadRunRecord(ctx.redis, rec.id),
    rec.status === 'queued' ? ctx.gate.position(rec.id) : undefined,
    rec.workers ? undefined : ctx.redis.get(runKeys.plan(rec.id)),
  ]);
  const workerIds =
    rec.workers ??
    (planRaw ? decodeJson(PlanRanks, planRaw, `run plan ${runKeys.plan(rec.id)}`).ranks : undefined);
  const tracking = runRecord?.tracker;
  const links = linksOf(rec.id);
  const mlflowRunId = tracking?.kind === 'mlflow' ? tracking.runId : undefined;
  const checkpoint = rec.status === 'queued' ? undefined : await predictCheckpoint(ctx, rec.id, mlflowRunId);
  let tfjsExport: ModelView['tfjsExport'];
  if (rec.modelPath) {
    const dir = modelDirOf(rec.modelPath);
    const files = await modelFiles(dir);
    links.tfjsExport = `/v1/experiments/${rec.id}/model/model.json`;
    tfjsExport = {
      path: dir,
      ...(mlflowRunId ? { artifact: `runs:/${mlflowRunId}/model` } : {}),
      files: files.map((f) => ({
        ...f,
        url: `/v1/experiments/${rec.id}/model/${encodeURIComponent(f.name)}`,
      })),
    };
  }
  const model: ModelView | undefined =
    checkpoint || tfjsExport
      ? { ...(checkpoint ? { checkpoint } : {}), ...(tfjsExport ? { tfjsExport } : {}) }
      : undefined;
  if (tracking?.kind === 'mlflow') links.mlflow = tracking.location;
  return {
    ...toSummary(rec),
    spec: rec.spec as unknown as Record<string, unknown>,
    ...(live?.progress ? { progress: live.progress } : {}),
    ...(live?.resuming ? { resuming: live.resuming } : {}),
    ...(rec.testMetrics ? { testMetrics: rec.testMetrics } : {}),
    ...(rec.error ? { error: rec.error } : {}),
    ...(position !== undefined ? { queuePosition: position } : {}),
    ...(workerIds ? { workerIds } : {}),
    ...(rec.waitingForWorkers
      ? { waitingForWorkers: { ...rec.waitingForWorkers, since: iso(rec.waitingForWorkers.since) as string } }
      : {}),
    ...(rec.generations
      ? { generations: rec.generations.map((g) => ({ ...g, at: iso(g.at) as string })) }
      : {}),
    ...(tracking ? { tracking: { kind: tracking.kind, runId: tracking.runId, url: tracking.location } } : {}),
    ...(model ? { model } : {}),
    links,
  };
}
