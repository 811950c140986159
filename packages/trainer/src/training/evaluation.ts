import type { Communicator } from '@lits-ddp/allreduce';
import { MetricCounts, type UNet3D } from '@lits-ddp/unet';
import type { CubeStore } from './cube-store.js';
import { gatherCounts } from './gradient-reducer.js';

/**
 * Throws the communicator's failure (e.g. the run's abort record, which a cancel writes) if it has one. Yields to the
 * event loop first, so that its abort poll runs between two synchronous stretches of compute: without this a rank
 * would only notice a cancel at its next collective, which after a long evaluation can be many seconds later.
 */
export async function stopIfGroupFailed(comm: Communicator): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (comm.failure) throw comm.failure;
}

/**
 * Evaluates a split in eval mode. Test batch b holds cubes b·size … b·size + size − 1 of the split
 * (the seed's test DataLoader, no shuffle); rank r evaluates batches b ≡ r (mod N) and the records,
 * keyed by b, are merged on every rank, so the result equals a single-process evaluation. An aborted group (a
 * cancel, a failed rank) stops it between two batches.
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
    await stopIfGroupFailed(comm);
    const indices = Array.from(
      { length: Math.min(batchSize, cubes.size - b * batchSize) },
      (_, i) => b * batchSize + i,
    );
    mine = mine.merge(model.evaluate(cubes.microBatch(indices), { batch: b }));
  }
  return gatherCounts(comm, classes, mine);
}
