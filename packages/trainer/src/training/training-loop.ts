import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Communicator } from '@lits-ddp/allreduce';
import { microBatchPlan, microBatchesForRank, type PreprocessConfig } from '@lits-ddp/lits-data';
import type { RunEvent, RunPlan } from '@lits-ddp/protocol';
import {
  exportTfjsModel,
  loadCheckpoint,
  MetricCounts,
  saveCheckpoint,
  type CheckpointRng,
  type Engine,
  type EngineIdentity,
  type ReduceLROnPlateau,
  type UNet3D,
} from '@lits-ddp/unet';
import { errorMessage } from '@lits-ddp/errors';
import { StoppedBySignal } from '../errors.js';
import type { CubeStore } from './cube-store.js';
import { evaluateSplit, stopIfGroupFailed } from './evaluation.js';
import { averageStep, gatherCounts, type Contribution } from './gradient-reducer.js';

export interface TrainingContext {
  plan: RunPlan;
  rank: number;
  redisUrl: string;
  engine: Engine;
  publish: (event: RunEvent) => Promise<void>;
  signal: AbortSignal;
  log: (line: string) => void;
}

/** A rank's model and data once every rank agreed on the engine and the initial weights. */
export interface PreparedRank {
  model: UNet3D;
  scheduler: ReduceLROnPlateau;
  /** Lowest train loss of a test epoch so far (the best checkpoint's). */
  bestLoss: number;
  /** The engine identity checkpoints record. */
  engine: EngineIdentity;
  trainCubes: CubeStore;
  testCubes: CubeStore;
  /** Checkpoints carry it, so `lits predict --model <checkpoint>` works outside the run folder. */
  preprocessing: PreprocessConfig;
}

const now = (): number => performance.now();

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
      ? errorMessage(err)
      : 'it does not exist (no test epoch improved the train loss, or this rank cannot see that folder)';
    const message = `rank ${ctx.rank}: cannot load the best checkpoint ${path}: ${reason}; testing the final weights instead`;
    ctx.log(message);
    await ctx.publish({ type: 'log', rank: ctx.rank, level: 'warn', message });
    return final;
  }
}

/**
 * One rank's epochs: each step computes this rank's micro-batches (k ≡ rank mod N), averages them
 * over all ranks and applies the same update everywhere; test epochs evaluate, step the scheduler
 * and (rank 0) checkpoint; the end exports the model and tests the best checkpoint.
 */
export class TrainingLoop {
  private readonly microBatchesPerStep: number;
  /** This rank's micro-batches of every step. */
  private readonly mine: number[];
  /** Gradients and BN statistics, back to back. */
  private readonly length: number;
  private readonly verifyWeights = process.env.LITS_VERIFY_WEIGHTS === '1';
  private bestLoss: number;

  constructor(
    private readonly ctx: TrainingContext,
    private readonly comm: Communicator,
    private readonly rank: PreparedRank,
  ) {
    const { spec, ranks } = ctx.plan;
    this.microBatchesPerStep = spec['global-batch-size'] / spec['micro-batch-size'];
    this.mine = microBatchesForRank(this.microBatchesPerStep, ctx.rank, ranks.length);
    this.length = rank.model.paramCount + rank.model.getRunningStats().length;
    this.bestLoss = rank.bestLoss;
  }

  private get classes(): number {
    return this.ctx.plan.spec['n-class'];
  }

  async runEpoch(epoch: number): Promise<void> {
    const { plan } = this.ctx;
    const steps = microBatchPlan({
      size: this.rank.trainCubes.size,
      seed: plan.seeds.data,
      epoch,
      microBatchSize: plan.spec['micro-batch-size'],
      microBatchesPerStep: this.microBatchesPerStep,
    });
    let epochCounts = MetricCounts.empty(this.classes);
    for (const [t, step] of steps.entries()) {
      await this.stopWhenSignalled();
      // An aborted group (a cancel) stops here rather than after this rank's share of the step's compute.
      await stopIfGroupFailed(this.comm);
      epochCounts = epochCounts.merge(await this.step(epoch, t, step, steps.length));
    }
    await this.endEpoch(epoch, epochCounts);
  }

  /** Between two steps: a SIGTERM/SIGINT aborts the generation's collectives and ends this rank. */
  private async stopWhenSignalled(): Promise<void> {
    const { signal, rank } = this.ctx;
    if (!signal.aborted) return;
    const name = String(signal.reason);
    await this.comm.abort(`rank ${rank} stopped by ${name}`);
    throw new StoppedBySignal(name);
  }

  /** One optimiser step; returns the step's metric counts, merged over all ranks. */
  private async step(
    epoch: number,
    t: number,
    microBatches: number[][],
    stepsPerEpoch: number,
  ): Promise<MetricCounts> {
    const { plan, rank } = this.ctx;
    const { spec, generation } = plan;
    const { model } = this.rank;
    const t0 = now();
    let dataMs = 0;
    let computeMs = 0;
    const contributions: Contribution[] = [];
    for (const k of this.mine) {
      const d0 = now();
      const batch = this.rank.trainCubes.microBatch(microBatches[k] as number[]);
      const c0 = now();
      dataMs += c0 - d0;
      const r = model.computeGradients(batch, { seed: plan.seeds.model, epoch, step: t, microBatch: k });
      const vector = new Float32Array(this.length);
      vector.set(r.grads, 0);
      vector.set(r.bnStats, r.grads.length);
      contributions.push({ vector, counts: r.counts });
      computeMs += now() - c0;
    }
    const r0 = now();
    const mean = await averageStep(
      this.comm,
      spec.determinism,
      contributions,
      this.microBatchesPerStep,
      this.length,
    );
    const counts = await gatherCounts(
      this.comm,
      this.classes,
      contributions.reduce((acc, c) => acc.merge(c.counts), MetricCounts.empty(this.classes)),
    );
    const allReduceMs = now() - r0;
    const a0 = now();
    model.applyGradients(mean.subarray(0, model.paramCount), mean.subarray(model.paramCount));
    computeMs += now() - a0;
    const stepLoss = counts.toSeedMetrics('train').train_avg_loss as number;
    const globalStep = epoch * stepsPerEpoch + t;
    if (rank === 0 && (globalStep + 1) % spec['log-interval'] === 0) {
      // The seed's --log-interval: a step-level loss, logged at the global step.
      await this.ctx.publish({
        type: 'metrics',
        generation,
        epoch,
        step: globalStep,
        metrics: { train_step_loss: stepLoss },
      });
    }
    const totalMs = now() - t0;
    const stats = this.comm.stats();
    await this.ctx.publish({
      type: 'progress',
      generation,
      rank,
      epoch,
      step: t,
      stepsPerEpoch,
      loss: stepLoss,
      timings: {
        computeMs,
        allReduceMs,
        dataMs,
        otherMs: Math.max(0, totalMs - computeMs - allReduceMs - dataMs),
      },
      bytesSent: stats.bytesSent,
      bytesReceived: stats.bytesReceived,
      ...(this.verifyWeights ? { weightHash: model.weightHash() } : {}),
    });
    return counts;
  }

  /** The epoch's metrics (rank 0 reports them); a test epoch also evaluates, steps the LR and checkpoints. */
  private async endEpoch(epoch: number, epochCounts: MetricCounts): Promise<void> {
    const { plan, rank } = this.ctx;
    const { spec, generation } = plan;
    const { model, scheduler } = this.rank;
    const metrics: Record<string, number> = { ...epochCounts.toSeedMetrics('train') };
    const trainLoss = metrics.train_avg_loss as number;
    const testEpoch = (epoch + 1) % spec['test-epochs'] === 0;
    if (testEpoch) {
      const val = await evaluateSplit(
        this.comm,
        model,
        this.rank.testCubes,
        spec['test-batch-size'],
        this.classes,
      );
      Object.assign(metrics, val.toSeedMetrics('val'));
      // The seed (PL 1.1) stepped ReduceLROnPlateau on train_avg_loss only on validation epochs.
      scheduler.step(trainLoss);
      model.optimizer.lr = scheduler.lr;
      await this.checkpoint(epoch, trainLoss);
    }
    metrics.lr = scheduler.lr;
    if (rank === 0) await this.ctx.publish({ type: 'metrics', generation, epoch, metrics });
    // Every rank must see rank 0's checkpoint before anyone can fail past it.
    if (testEpoch) await this.comm.barrier();
  }

  /** A test epoch's checkpoints: `last` always, `best` when the train loss improved (rank 0 writes them). */
  private async checkpoint(epoch: number, trainLoss: number): Promise<void> {
    const improved = trainLoss < this.bestLoss;
    if (improved) this.bestLoss = trainLoss;
    const { plan, rank } = this.ctx;
    if (rank !== 0) return;
    // A run aborted during the evaluation (a cancel) writes no checkpoint after it.
    await stopIfGroupFailed(this.comm);
    const { generation } = plan;
    const { model, scheduler, preprocessing, engine } = this.rank;
    const extra = { runId: plan.runId, generation, bestTrainLoss: this.bestLoss, preprocessing };
    const checkpoint = { model, scheduler, epoch, step: 0, extra, rng: this.rngBefore(epoch + 1), engine };
    const checkpointDir = plan.paths.checkpointDir;
    const last = join(checkpointDir, 'last');
    await saveCheckpoint(last, checkpoint);
    if (improved) {
      const best = join(checkpointDir, 'best');
      await saveCheckpoint(best, checkpoint);
      await this.ctx.publish({ type: 'checkpoint', generation, epoch, path: best, kind: 'best', trainLoss });
    }
    await this.ctx.publish({ type: 'checkpoint', generation, epoch, path: last, kind: 'last', trainLoss });
  }

  /** A checkpoint's random streams: the run's seeds, and the epoch its next step starts. */
  private rngBefore(epoch: number): CheckpointRng {
    const { seeds } = this.ctx.plan;
    return { seed: seeds.model, dataSeed: seeds.data, epoch, step: 0 };
  }

  /**
   * After the last epoch: rank 0 saves `final` and exports the model; every rank tests and reports. A run aborted
   * (cancelled) by then writes neither, and the test evaluation stops between two batches.
   */
  async finish(): Promise<void> {
    const { plan, rank } = this.ctx;
    const { spec, generation } = plan;
    const { model, scheduler, preprocessing, engine } = this.rank;
    const finalHash = model.weightHash();
    let modelPath = '';
    await stopIfGroupFailed(this.comm);
    if (rank === 0) {
      await saveCheckpoint(join(plan.paths.checkpointDir, 'final'), {
        model,
        scheduler,
        epoch: spec.max_epochs - 1,
        step: 0,
        extra: { runId: plan.runId, preprocessing },
        rng: this.rngBefore(spec.max_epochs),
        engine,
      });
      await stopIfGroupFailed(this.comm);
      modelPath = await exportTfjsModel(this.ctx.engine.tf, model, join(plan.paths.runDir, 'model'));
    }
    const tested = await evaluateSplit(
      this.comm,
      await bestCheckpointModel(this.ctx, model),
      this.rank.testCubes,
      spec['test-batch-size'],
      this.classes,
    );
    const testMetrics = tested.toSeedMetrics('test');
    if (rank === 0)
      await this.ctx.publish({
        type: 'metrics',
        generation,
        epoch: spec.max_epochs - 1,
        metrics: testMetrics,
      });
    const paths = await this.comm.allGather(Buffer.from(modelPath));
    await this.ctx.publish({
      type: 'finished',
      generation,
      rank,
      weightHash: finalHash,
      testMetrics,
      modelPath: paths[0]?.toString() ?? '',
    });
  }
}
