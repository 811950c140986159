// Training-step timing with analytic FLOPs, for `npm run bench`.
import type { UNetArchitecture } from './architecture.js';
import type { Tfjs } from './engine.js';
import { unetFlops } from './flops.js';
import { UNet3D } from './model.js';
import { syntheticLiverCubes } from './synthetic.js';

export interface StepBenchmarkOptions {
  readonly architecture: Partial<UNetArchitecture>;
  /** Cube edge. */
  readonly size: number;
  readonly batch: number;
  /** Untimed steps first (JIT warm-up). */
  readonly warmup: number;
  readonly repeats: number;
  /** Called after every step (0-based, warm-up included): a cpu step at 64³ takes minutes, so show progress. */
  readonly onStep?: (index: number, ms: number, timed: boolean) => void;
}

export interface StepBenchmarkResult {
  /** Median over the timed steps of computeGradients + applyGradients. */
  readonly stepMs: number;
  readonly allStepMs: readonly number[];
  readonly flopsPerStep: number;
  readonly gflops: number;
}

export function benchmarkTrainStep(tf: Tfjs, options: StepBenchmarkOptions): StepBenchmarkResult {
  const model = UNet3D.create(tf, { seed: 0, architecture: options.architecture });
  const cases = Array.from({ length: options.batch }, (_, i) => i);
  const batch = syntheticLiverCubes({ seed: 0, size: options.size, cases });
  const times: number[] = [];
  for (let i = 0; i < options.warmup + options.repeats; i++) {
    const started = performance.now();
    const r = model.computeGradients(batch, { seed: 0, epoch: 0, step: i, microBatch: 0 });
    model.applyGradients(r.grads, r.bnStats);
    const ms = performance.now() - started;
    if (i >= options.warmup) times.push(ms);
    options.onStep?.(i, ms, i >= options.warmup);
  }
  model.dispose();
  const sorted = [...times].sort((a, b) => a - b);
  const stepMs = sorted[Math.floor((sorted.length - 1) / 2)] as number;
  const flopsPerStep = unetFlops(model.layout.architecture, options.size, options.batch).trainStep;
  return { stepMs, allStepMs: times, flopsPerStep, gflops: flopsPerStep / (stepMs * 1e6) };
}
