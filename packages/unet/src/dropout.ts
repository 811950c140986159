// Channel-wise Dropout3d masks from the counter-based generator (never tfjs's RNG).
import { CounterRng } from '@lits-ddp/counter-rng';
import type { StepKey } from './micro-batch.js';

/**
 * Multipliers for one Dropout3d layer: [batch, channels], each 0 (dropped with probability `rate`) or 1/(1 − rate)
 * in float32. Draw n·channels + c of stream (seed, 'dropout', epoch, step, microBatch, layerIndex) decides
 * (sample n, channel c), so every process computes the same mask for the same key.
 */
export function dropoutMask(
  key: StepKey,
  layerIndex: number,
  batch: number,
  channels: number,
  rate: number,
): Float32Array {
  if (!(rate >= 0 && rate < 1)) throw new RangeError(`dropout rate must be in [0, 1), got ${rate}`);
  const mask = new Float32Array(batch * channels);
  const keep = Math.fround(1 / (1 - rate));
  const rng = CounterRng.derive(key.seed, 'dropout', key.epoch, key.step, key.microBatch, layerIndex);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.float32() < rate ? 0 : keep;
  return mask;
}
