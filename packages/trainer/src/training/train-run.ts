import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Type from 'typebox';
import { CollectiveAbortedError, CollectiveTimeoutError, Communicator } from '@lits-ddp/allreduce';
import { errorMessage } from '@lits-ddp/errors';
import { decodeJson, parseClassWeights } from '@lits-ddp/protocol';
import {
  defaultLoss,
  formatSummary,
  loadCheckpoint,
  ReduceLROnPlateau,
  engineIdentity,
  parseEngineIdentity,
  UNet3D,
  type EngineIdentity,
} from '@lits-ddp/unet';
import {
  CheckpointMismatchError,
  EngineMismatchError,
  RanksDivergedError,
  RunPlanError,
  StoppedBySignal,
  TrainingStopped,
} from '../errors.js';
import { CubeStore } from './cube-store.js';
import { checkpointEngineProblem, planEngineMismatch, rankEngineProblem } from './engine-check.js';
import { TrainingLoop, type TrainingContext } from './training-loop.js';

/** Fresh model, or the plan's checkpoint when the run restarts. */
async function buildModel(
  ctx: TrainingContext,
): Promise<{ model: UNet3D; scheduler: ReduceLROnPlateau; startEpoch: number; bestLoss: number }> {
  const { spec, seeds, resumeFrom } = ctx.plan;
  if (resumeFrom) {
    const loaded = await loadCheckpoint(ctx.engine.tf, resumeFrom.path);
    const problem = checkpointEngineProblem(loaded.engine, ctx.engine, spec.determinism, resumeFrom.path);
    if (problem.error) throw new EngineMismatchError(problem.error);
    if (problem.warning && ctx.rank === 0)
      await ctx.publish({ type: 'log', rank: ctx.rank, level: 'warn', message: problem.warning });
    const extra = (loaded.extra ?? {}) as { bestTrainLoss?: number };
    // A checkpoint of another run's streams would continue with the wrong dropout and shuffles.
    if (loaded.rng && (loaded.rng.seed !== seeds.model || loaded.rng.dataSeed !== seeds.data))
      throw new CheckpointMismatchError(
        `${resumeFrom.path}: checkpoint rng seeds (${String(loaded.rng.seed)}, ${String(loaded.rng.dataSeed)}) ` +
          `are not this run's (${seeds.model}, ${seeds.data})`,
      );
    return {
      model: loaded.model,
      scheduler: loaded.scheduler ?? new ReduceLROnPlateau(spec.lr),
      startEpoch: loaded.rng?.epoch ?? loaded.epoch + 1,
      bestLoss: extra.bestTrainLoss ?? Number.POSITIVE_INFINITY,
    };
  }
  const weights = parseClassWeights(spec['class-weights'], spec['n-class']);
  if (typeof weights === 'string') throw new RunPlanError(`class-weights: ${weights}`);
  const model = UNet3D.create(ctx.engine.tf, {
    seed: seeds.model,
    architecture: {
      width: spec['unet-width'],
      inChannels: spec['n-channels'],
      classes: spec['n-class'],
      dropout: spec['dropout-rate'],
    },
    loss: defaultLoss('focal', weights),
    adam: { lr: spec.lr },
  });
  return {
    model,
    scheduler: new ReduceLROnPlateau(spec.lr),
    startEpoch: 0,
    bestLoss: Number.POSITIVE_INFINITY,
  };
}

/** One rank's part of one generation of a run; rank 0 also checkpoints and reports epoch metrics. */
export async function runTraining(ctx: TrainingContext): Promise<void> {
  const { plan, rank } = ctx;
  const { spec, runId, generation } = plan;
  const worldSize = plan.ranks.length;
  const error = planEngineMismatch(plan, ctx.engine);
  if (error) {
    await ctx.publish({ type: 'failed', generation, rank, error });
    throw new EngineMismatchError(error);
  }
  const comm = await Communicator.connect({
    redis: ctx.redisUrl,
    runId,
    generation,
    rank,
    worldSize,
    timeoutS: spec['collective-timeout-s'],
  });
  try {
    await train(ctx, comm);
  } catch (err) {
    if (err instanceof StoppedBySignal) {
      // Report, so the supervisor restarts (or fails) the run now instead of waiting for the heartbeat.
      await ctx.publish({
        type: 'failed',
        generation,
        rank,
        error: `rank ${rank} stopped by ${err.signal} (the worker is shutting down)`,
      });
      throw err;
    }
    if (err instanceof CollectiveAbortedError || err instanceof TrainingStopped)
      throw new TrainingStopped(err.message);
    const error = errorMessage(err);
    const lateRank = err instanceof CollectiveTimeoutError ? err.waitingFor : undefined;
    await ctx.publish({
      type: 'failed',
      generation,
      rank,
      error,
      ...(lateRank !== undefined ? { lateRank } : {}),
    });
    await comm.abort(`rank ${rank}: ${error}`).catch(() => undefined);
    throw err;
  } finally {
    await comm.close().catch(() => undefined);
  }
}

async function train(ctx: TrainingContext, comm: Communicator): Promise<void> {
  const { plan } = ctx;
  const trainCubes = new CubeStore(plan.paths.cacheDir, plan.trainCases);
  const testCubes = new CubeStore(plan.paths.cacheDir, plan.testCases);
  const preprocessing = trainCubes.preprocessing;
  const engine = engineIdentity(ctx.engine);
  const built = await buildModel(ctx);
  await checkRankEngines(ctx, comm, engine);
  await checkSameWeights(comm, built.model);
  await ctx.publish({
    type: 'started',
    generation: plan.generation,
    rank: ctx.rank,
    engine: ctx.engine.name,
    weightHash: built.model.weightHash(),
  });
  if (ctx.rank === 0) {
    await mkdir(plan.paths.checkpointDir, { recursive: true });
    await writeFile(
      join(plan.paths.runDir, 'model_summary.txt'),
      `${formatSummary(built.model.config.architecture)}\n`,
    );
  }
  const loop = new TrainingLoop(ctx, comm, { ...built, engine, trainCubes, testCubes, preprocessing });
  for (let epoch = built.startEpoch; epoch < plan.spec.max_epochs; epoch++) await loop.runEpoch(epoch);
  await loop.finish();
}

/** Every rank all-gathers its engine identity: another engine is refused, another machine class maybe. */
async function checkRankEngines(
  ctx: TrainingContext,
  comm: Communicator,
  engine: EngineIdentity,
): Promise<void> {
  const identities = (await comm.allGather(Buffer.from(JSON.stringify(engine)))).map((b, r) => {
    const source = `rank ${r}'s engine`;
    // parseEngineIdentity checks the fields and names the bad one.
    return parseEngineIdentity(decodeJson(Type.Unknown(), b.toString(), source), source);
  });
  const mixed = rankEngineProblem(identities, ctx.plan.spec.determinism);
  if (mixed.error) throw new EngineMismatchError(mixed.error);
  if (mixed.warning && ctx.rank === 0)
    await ctx.publish({ type: 'log', rank: ctx.rank, level: 'warn', message: mixed.warning });
}

/** The ranks must start from the same weights (same seed, same checkpoint). */
async function checkSameWeights(comm: Communicator, model: UNet3D): Promise<void> {
  const hashes = await comm.allGather(Buffer.from(model.weightHash()));
  const distinct = new Set(hashes.map((h) => h.toString()));
  if (distinct.size !== 1)
    throw new RanksDivergedError(
      `ranks built different weights: ${hashes.map((h, r) => `${r}=${h.toString().slice(0, 12)}`).join(' ')}`,
    );
}
