import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CollectiveAbortedError, CollectiveTimeoutError, Communicator } from '@lits-ddp/allreduce';
import { microBatchPlan, microBatchesForRank } from '@lits-ddp/lits-data';
import { parseClassWeights, type RunEvent, type RunPlan } from '@lits-ddp/protocol';
import {
  defaultLoss,
  exportTfjsModel,
  formatSummary,
  loadCheckpoint,
  MetricCounts,
  ReduceLROnPlateau,
  engineIdentity,
  parseEngineIdentity,
  saveCheckpoint,
  UNet3D,
  type Engine,
} from '@lits-ddp/unet';
import { CubeStore } from './cube-store.js';
import { checkpointEngineProblem, planEngineMismatch, rankEngineProblem } from './engine-check.js';
import { evaluateSplit } from './evaluation.js';
import { averageStep, gatherCounts, type Contribution } from './gradient-reducer.js';

/** The training ended because the run was aborted or this worker was told to stop. */
export class TrainingStopped extends Error {}

/** This worker was told to stop (SIGTERM/SIGINT) between two steps; `signal` names what stopped it. */
class StoppedBySignal extends TrainingStopped {
  constructor(readonly signal: string) {
    super(`stopped by ${signal}`);
  }
}

export interface TrainingContext {
  plan: RunPlan;
  rank: number;
  redisUrl: string;
  engine: Engine;
  publish: (event: RunEvent) => Promise<void>;
  signal: AbortSignal;
  log: (line: string) => void;
}

const now = (): number => performance.now();

/** Fresh model, or the plan's checkpoint when the run restarts. */
async function buildModel(
  ctx: TrainingContext,
): Promise<{ model: UNet3D; scheduler: ReduceLROnPlateau; startEpoch: number; bestLoss: number }> {
  const { spec, seeds, resumeFrom } = ctx.plan;
  if (resumeFrom) {
    const loaded = await loadCheckpoint(ctx.engine.tf, resumeFrom.path);
    const problem = checkpointEngineProblem(loaded.engine, ctx.engine, spec.determinism, resumeFrom.path);
    if (problem.error) throw new Error(problem.error);
    if (problem.warning && ctx.rank === 0)
      await ctx.publish({ type: 'log', rank: ctx.rank, level: 'warn', message: problem.warning });
    const extra = (loaded.extra ?? {}) as { bestTrainLoss?: number };
    // A checkpoint of another run's streams would continue with the wrong dropout and shuffles.
    if (loaded.rng && (loaded.rng.seed !== seeds.model || loaded.rng.dataSeed !== seeds.data))
      throw new Error(
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
  if (typeof weights === 'string') throw new Error(`class-weights: ${weights}`);
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

/**
 * The seed tests the checkpoint with the lowest train loss among the test epochs. When it cannot be
 * loaded (no test epoch ran or improved, or this rank cannot read rank 0's folder), the final weights
 * are tested instead, and a warning event says so.
 */
export async function bestCheckpointModel(ctx: TrainingContext, final: UNet3D): Promise<UNet3D> {
  const path = join(ctx.plan.paths.checkpointDir, 'best');
  try {
    return (await loadCheckpoint(ctx.engine.tf, path)).model;
  } catch (err) {
    const reason = existsSync(path)
      ? err instanceof Error
        ? err.message
        : String(err)
      : 'it does not exist (no test epoch improved the train loss, or this rank cannot see that folder)';
    const message = `rank ${ctx.rank}: cannot load the best checkpoint ${path}: ${reason}; testing the final weights instead`;
    ctx.log(message);
    await ctx.publish({ type: 'log', rank: ctx.rank, level: 'warn', message });
    return final;
  }
}

/** One rank's part of one generation of a run; rank 0 also checkpoints and reports epoch metrics. */
export async function runTraining(ctx: TrainingContext): Promise<void> {
  const { plan, rank } = ctx;
  const { spec, runId, generation } = plan;
  const worldSize = plan.ranks.length;
  const error = planEngineMismatch(plan, ctx.engine);
  if (error) {
    await ctx.publish({ type: 'failed', generation, rank, error });
    throw new Error(error);
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
    const error = err instanceof Error ? err.message : String(err);
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
  const { plan, rank } = ctx;
  const { spec, generation } = plan;
  const worldSize = plan.ranks.length;
  const classes = spec['n-class'];
  const m = spec['micro-batch-size'];
  const K = spec['global-batch-size'] / m;
  const mine = microBatchesForRank(K, rank, worldSize);
  const trainCubes = new CubeStore(plan.paths.cacheDir, plan.trainCases);
  const testCubes = new CubeStore(plan.paths.cacheDir, plan.testCases);
  const verifyWeights = process.env.LITS_VERIFY_WEIGHTS === '1';
  // Checkpoints carry it, so `lits predict --model <checkpoint>` works outside the run folder.
  const preprocessing = trainCubes.preprocessing;
  // A checkpoint's random streams: the run's seeds, and the epoch its next step starts.
  const rngBefore = (epoch: number) => ({
    seed: plan.seeds.model,
    dataSeed: plan.seeds.data,
    epoch,
    step: 0,
  });

  const engine = engineIdentity(ctx.engine);
  const built = await buildModel(ctx);
  const { model, scheduler, startEpoch } = built;
  let bestLoss = built.bestLoss;
  const identities = (await comm.allGather(Buffer.from(JSON.stringify(engine)))).map((b, r) =>
    parseEngineIdentity(JSON.parse(b.toString()), `rank ${r}'s engine`),
  );
  const mixed = rankEngineProblem(identities, spec.determinism);
  if (mixed.error) throw new Error(mixed.error);
  if (mixed.warning && rank === 0)
    await ctx.publish({ type: 'log', rank, level: 'warn', message: mixed.warning });
  const hashes = await comm.allGather(Buffer.from(model.weightHash()));
  const distinct = new Set(hashes.map((h) => h.toString()));
  if (distinct.size !== 1)
    throw new Error(
      `ranks built different weights: ${hashes.map((h, r) => `${r}=${h.toString().slice(0, 12)}`).join(' ')}`,
    );
  await ctx.publish({
    type: 'started',
    generation,
    rank,
    engine: ctx.engine.name,
    weightHash: model.weightHash(),
  });
  const length = model.paramCount + model.getRunningStats().length;
  const checkpointDir = plan.paths.checkpointDir;
  if (rank === 0) {
    await mkdir(checkpointDir, { recursive: true });
    await writeFile(
      join(plan.paths.runDir, 'model_summary.txt'),
      `${formatSummary(model.config.architecture)}\n`,
    );
  }

  for (let epoch = startEpoch; epoch < spec.max_epochs; epoch++) {
    const steps = microBatchPlan({
      size: trainCubes.size,
      seed: plan.seeds.data,
      epoch,
      microBatchSize: m,
      microBatchesPerStep: K,
    });
    let epochCounts = MetricCounts.empty(classes);
    for (const [t, step] of steps.entries()) {
      if (ctx.signal.aborted) {
        const signal = String(ctx.signal.reason);
        await comm.abort(`rank ${rank} stopped by ${signal}`);
        throw new StoppedBySignal(signal);
      }
      const t0 = now();
      let dataMs = 0;
      let computeMs = 0;
      const contributions: Contribution[] = [];
      for (const k of mine) {
        const d0 = now();
        const batch = trainCubes.microBatch(step[k] as number[]);
        const c0 = now();
        dataMs += c0 - d0;
        const r = model.computeGradients(batch, { seed: plan.seeds.model, epoch, step: t, microBatch: k });
        const vector = new Float32Array(length);
        vector.set(r.grads, 0);
        vector.set(r.bnStats, r.grads.length);
        contributions.push({ vector, counts: r.counts });
        computeMs += now() - c0;
      }
      const r0 = now();
      const mean = await averageStep(comm, spec.determinism, contributions, K, length);
      const counts = await gatherCounts(
        comm,
        classes,
        contributions.reduce((acc, c) => acc.merge(c.counts), MetricCounts.empty(classes)),
      );
      const allReduceMs = now() - r0;
      const a0 = now();
      model.applyGradients(mean.subarray(0, model.paramCount), mean.subarray(model.paramCount));
      computeMs += now() - a0;
      epochCounts = epochCounts.merge(counts);
      const stepLoss = counts.toSeedMetrics('train').train_avg_loss as number;
      const globalStep = epoch * steps.length + t;
      if (rank === 0 && (globalStep + 1) % spec['log-interval'] === 0) {
        // The seed's --log-interval: a step-level loss, logged at the global step.
        await ctx.publish({
          type: 'metrics',
          generation,
          epoch,
          step: globalStep,
          metrics: { train_step_loss: stepLoss },
        });
      }
      const totalMs = now() - t0;
      const stats = comm.stats();
      await ctx.publish({
        type: 'progress',
        generation,
        rank,
        epoch,
        step: t,
        stepsPerEpoch: steps.length,
        loss: stepLoss,
        timings: {
          computeMs,
          allReduceMs,
          dataMs,
          otherMs: Math.max(0, totalMs - computeMs - allReduceMs - dataMs),
        },
        bytesSent: stats.bytesSent,
        bytesReceived: stats.bytesReceived,
        ...(verifyWeights ? { weightHash: model.weightHash() } : {}),
      });
    }

    const metrics: Record<string, number> = { ...epochCounts.toSeedMetrics('train') };
    const trainLoss = metrics.train_avg_loss as number;
    const testEpoch = (epoch + 1) % spec['test-epochs'] === 0;
    if (testEpoch) {
      const val = await evaluateSplit(comm, model, testCubes, spec['test-batch-size'], classes);
      Object.assign(metrics, val.toSeedMetrics('val'));
      // The seed (PL 1.1) stepped ReduceLROnPlateau on train_avg_loss only on validation epochs.
      scheduler.step(trainLoss);
      model.optimizer.lr = scheduler.lr;
      if (rank === 0) {
        const improved = trainLoss < bestLoss;
        if (improved) bestLoss = trainLoss;
        const extra = { runId: plan.runId, generation, bestTrainLoss: bestLoss, preprocessing };
        const checkpoint = { model, scheduler, epoch, step: 0, extra, rng: rngBefore(epoch + 1), engine };
        const last = join(checkpointDir, 'last');
        await saveCheckpoint(last, checkpoint);
        if (improved) {
          const best = join(checkpointDir, 'best');
          await saveCheckpoint(best, checkpoint);
          await ctx.publish({ type: 'checkpoint', generation, epoch, path: best, kind: 'best', trainLoss });
        }
        await ctx.publish({ type: 'checkpoint', generation, epoch, path: last, kind: 'last', trainLoss });
      } else if (trainLoss < bestLoss) bestLoss = trainLoss;
    }
    metrics.lr = scheduler.lr;
    if (rank === 0) await ctx.publish({ type: 'metrics', generation, epoch, metrics });
    // Every rank must see rank 0's checkpoint before anyone can fail past it.
    if (testEpoch) await comm.barrier();
  }

  const finalHash = model.weightHash();
  let modelPath = '';
  if (rank === 0) {
    await saveCheckpoint(join(checkpointDir, 'final'), {
      model,
      scheduler,
      epoch: spec.max_epochs - 1,
      step: 0,
      extra: { runId: plan.runId, preprocessing },
      rng: rngBefore(spec.max_epochs),
      engine,
    });
    modelPath = await exportTfjsModel(ctx.engine.tf, model, join(plan.paths.runDir, 'model'));
  }
  const tested = await evaluateSplit(
    comm,
    await bestCheckpointModel(ctx, model),
    testCubes,
    spec['test-batch-size'],
    classes,
  );
  const testMetrics = tested.toSeedMetrics('test');
  if (rank === 0)
    await ctx.publish({ type: 'metrics', generation, epoch: spec.max_epochs - 1, metrics: testMetrics });
  const paths = await comm.allGather(Buffer.from(modelPath));
  await ctx.publish({
    type: 'finished',
    generation,
    rank,
    weightHash: finalHash,
    testMetrics,
    modelPath: paths[0]?.toString() ?? '',
  });
}
