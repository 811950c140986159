import type { Communicator } from '@lits-ddp/allreduce';
import { MetricCounts, type UNet3D } from '@lits-ddp/unet';
import type { CubeStore } from './cube-store.js';
import { gatherCounts } from './gradient-reducer.js';

/**
 * Evaluates a split in eval mode. Test batch b holds cubes b·size … b·size + size − 1 of the split
 * (the seed's test DataLoader, no shuffle); rank r evaluates batches b ≡ r (mod N) and the records,
 * keyed by b, are merged on every rank, so the result equals a single-process evaluation.
 */
export async function evaluateSplit(
  comm: Communicator,
  model: UNet3D,
  cubes: CubeStore,
  batchSize: number,
  classes: number,
): Promise<MetricCounts> {
  let mine = MetricCounts.empty(classes);
  const batches = Math.ceil(cubes.size / batchSize);
  for (let b = comm.rank; b < batches; b += comm.worldSize) {
    const indices = Array.from(
      { length: Math.min(batchSize, cubes.size - b * batchSize) },
      (_, i) => b * batchSize + i,
    );
    mine = mine.merge(model.evaluate(cubes.microBatch(indices), { batch: b }));
  }
  return gatherCounts(comm, classes, mine);
}
