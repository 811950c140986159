// PyTorch's default init, drawn from counter-rng streams keyed ('init', parameterName).
import { CounterRng } from '@lits-ddp/counter-rng';
import type { UNetLayout } from './architecture.js';

/**
 * Conv weights: kaiming_uniform(a = √5) = U(±√(6 / ((1 + a²)·fanIn))) = U(±1/√fanIn); conv biases U(±1/√fanIn);
 * BN γ = 1, β = 0. Values are drawn in the tfjs storage order of each tensor.
 */
export function initialWeights(layout: UNetLayout, seed: number | string): Float32Array {
  const weights = new Float32Array(layout.totalParams);
  for (const p of layout.parameters) {
    const view = weights.subarray(p.offset, p.offset + p.size);
    if (p.role === 'gamma') view.fill(1);
    else if (p.role === 'beta') view.fill(0);
    else {
      const bound = 1 / Math.sqrt(p.fanIn);
      CounterRng.derive(seed, 'init', p.name).fillUniform(view, -bound, bound);
    }
  }
  return weights;
}

/** Running statistics at construction: mean 0, variance 1 per channel (PyTorch's buffers). */
export function initialRunningStats(layout: UNetLayout): Float32Array {
  const stats = new Float32Array(layout.bnStatsLength);
  for (const bn of layout.batchNorms) stats.fill(1, bn.offset + bn.channels, bn.offset + 2 * bn.channels);
  return stats;
}
