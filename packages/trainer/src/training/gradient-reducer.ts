import Type from 'typebox';
import type { Communicator } from '@lits-ddp/allreduce';
import { MetricCounts } from '@lits-ddp/unet';
import { decodeJson, type DeterminismMode } from '@lits-ddp/protocol';

/** One micro-batch's share of a step: gradients and BN statistics back to back. */
export interface Contribution {
  vector: Float32Array;
  counts: MetricCounts;
}

/**
 * Averages a step's contributions over all ranks. Deterministic mode sums them exactly (the result
 * does not depend on how micro-batches are spread over ranks); random and seed modes add this
 * rank's contributions in micro-batch order, then run the fp32 ring (bit-identical for a fixed N).
 */
export async function averageStep(
  comm: Communicator,
  mode: DeterminismMode,
  mine: readonly Contribution[],
  totalContributions: number,
  length: number,
): Promise<Float32Array> {
  if (mode === 'deterministic') {
    return comm.allReduceExact(
      mine.map((c) => c.vector),
      { totalContributions, op: 'mean', length },
    );
  }
  const local = new Float32Array(length);
  for (const c of mine)
    for (let i = 0; i < length; i++) local[i] = (local[i] as number) + (c.vector[i] as number);
  const sum = await comm.allReduce(local, { op: 'sum', mode: 'ring' });
  for (let i = 0; i < length; i++) sum[i] = (sum[i] as number) / totalContributions;
  return sum;
}

/** Merges every rank's metric records (each rank ends with the same, world-size-independent counts). */
export async function gatherCounts(
  comm: Communicator,
  classes: number,
  mine: MetricCounts,
): Promise<MetricCounts> {
  const parts = await comm.allGather(Buffer.from(JSON.stringify(mine.toJSON())));
  return parts.reduce((acc, part, rank) => {
    const source = `counts of rank ${rank}`;
    // MetricCounts.fromJSON checks the structure (classes, records) and names the bad field.
    return acc.merge(
      MetricCounts.fromJSON(decodeJson(Type.Unknown(), part.toString('utf8'), source), source),
    );
  }, MetricCounts.empty(classes));
}
