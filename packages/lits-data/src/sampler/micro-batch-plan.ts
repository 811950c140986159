import type { PurposePart } from '@lits-ddp/counter-rng';
import { epochOrder } from './distributed-sampler.js';

export interface MicroBatchPlanOptions {
  size: number;
  seed: PurposePart;
  epoch: number;
  /** m: samples per micro-batch. */
  microBatchSize: number;
  /** K: micro-batches per optimiser step (global batch = K·m). */
  microBatchesPerStep: number;
  /** Default true. */
  shuffle?: boolean;
  /** Default false: the last step is completed by wrap-around, like DistributedSampler's padding. */
  dropLast?: boolean;
}

/** steps[t][k] = the m sample indices of micro-batch k of step t. */
export type MicroBatchPlan = number[][][];

function positive(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be an integer ≥ 1, got ${v}`);
}

/**
 * The epoch as optimiser steps of K micro-batches of m samples, fixed by (seed, epoch) alone: micro-batch k of step t
 * holds positions (t·K + k)·m … + m − 1 of the epoch order, so it does not depend on the number of workers.
 */
export function microBatchPlan(options: MicroBatchPlanOptions): MicroBatchPlan {
  const { size, microBatchSize: m, microBatchesPerStep: k } = options;
  positive('microBatchSize', m);
  positive('microBatchesPerStep', k);
  const order = epochOrder(size, options.seed, options.epoch, options.shuffle ?? true);
  const global = m * k;
  const steps = size === 0 ? 0 : options.dropLast ? Math.floor(size / global) : Math.ceil(size / global);
  const plan: MicroBatchPlan = [];
  for (let t = 0; t < steps; t++) {
    const step: number[][] = [];
    for (let b = 0; b < k; b++) {
      const first = (t * k + b) * m;
      step.push(Array.from({ length: m }, (_, i) => order[(first + i) % size]!));
    }
    plan.push(step);
  }
  return plan;
}

/**
 * The micro-batch indices k ≡ rank (mod worldSize) of a step with K micro-batches. When worldSize does not divide K
 * the first K mod worldSize ranks take one more (an elastic run that lost a worker): the step still holds all K, and
 * the exact all-reduce sums them to the same bits however they are spread. Every rank needs one: worldSize ≤ K.
 */
export function microBatchesForRank(microBatchesPerStep: number, rank: number, worldSize: number): number[] {
  positive('microBatchesPerStep', microBatchesPerStep);
  positive('worldSize', worldSize);
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= worldSize)
    throw new RangeError(`rank ${rank} is outside worldSize ${worldSize}`);
  if (worldSize > microBatchesPerStep)
    throw new RangeError(
      `worldSize ${worldSize} exceeds microBatchesPerStep ${microBatchesPerStep}: rank ${rank} would compute nothing`,
    );
  const out: number[] = [];
  for (let k = rank; k < microBatchesPerStep; k += worldSize) out.push(k);
  return out;
}

/** Rank r's share of one step: its micro-batches, in k order. */
export function rankMicroBatches(step: readonly number[][], rank: number, worldSize: number): number[][] {
  return microBatchesForRank(step.length, rank, worldSize).map((k) => step[k]!);
}
