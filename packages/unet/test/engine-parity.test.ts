// The same weights and inputs on the pure-JS cpu engine and on native TensorFlow (tfjs-node, 1 intra-op thread):
// the acceptance bounds for gradients, BN statistics, losses, eval metrics, probabilities and the export.
// Both engines share one tf namespace and switch the global backend, so each case runs all of its cpu work first,
// then rebuilds the same state on native with UNet3D.fromState.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as tfjs from '@tensorflow/tfjs';
import {
  argmaxClasses,
  exportTfjsModel,
  loadEngine,
  loadExportedModel,
  syntheticLiverCubes,
  UNet3D,
  unetLayout,
  type GradientResult,
  type MetricCountsJSON,
  type MicroBatch,
  type StepKey,
  type Tfjs,
  type UNetArchitecture,
  type UNetLayout,
  type UNetState,
} from '../src/index.js';
import { nativeEngineReady } from '@lits-ddp/native-engine/vitest';

const ready = nativeEngineReady('the engine parity tests');

// Acceptance bounds (the issue). Every ratio is max |cpu − native| / max |cpu| over the compared values.
const PROBABILITIES_REL = 1e-4;
const GRADIENT_REL = 1e-3; // per parameter tensor, against its own max abs
const LOSS_REL = 1e-5;
const ARGMAX_AGREEMENT = 0.999;
// Not in the issue; per BN layer, means and variances apart. Measured 5.6e-7 and 1.1e-6 for the two cases.
const BN_STATS_REL = 1e-4;
// README: the export matches predictProbabilities within 1e-5; measured 2.9e-7 – 4.2e-7 (max abs, on native).
const EXPORT_ABS = 1e-5;
// A conv bias feeding a training-mode BatchNorm has an exact gradient of 0 (BN subtracts the channel mean), so
// both engines return rounding noise (measured ≤ 1e-6 of the max of the same conv's weight gradient) and their
// ratio means nothing. They are checked to be that noise instead.
const ZERO_GRADIENT_OF_WEIGHT = 1e-4;
/**
 * The seed's init has every BN beta at 0, which puts the densest part of each pre-activation distribution on
 * ReLU's kink. Rounding that differs in the 7th digit (cpu vs TensorFlow/oneDNN, even TensorFlow at 1 vs 2
 * intra-op threads) then sends a few pre-activations to opposite sides of 0, and each such flip moves the
 * gradients upstream of it by one voxel's share. At the seed init, 8 of 17 seeds tried put a tensor over 1e-3
 * (up to 1.1e-2, 29 of the 40 compared tensors in the worst seed; 2.4e-2 with oneDNN off). The gradient is not
 * defined at a kink, so no tolerance separates kernel errors from kink flips there. Beta at ±4 on alternate
 * channels moves the kinks into the distributions' tails (half the channels mostly open, half mostly closed:
 * both ReLU branches still run); then every tensor stayed ≤ 5.6e-4 over 7 seeds × (1 and 2 threads, oneDNN on
 * and off), and ≤ 3e-5 for the two seeds used here.
 */
const BETA_SHIFT = 4;

interface ParityCase {
  readonly name: string;
  readonly architecture: Partial<UNetArchitecture>;
  readonly size: number;
  readonly batch: number;
  readonly seed: number;
}

// The seed topology (width 32) at a small cube, and a narrower model at a bigger cube; batch 2 runs the
// multi-sample dropout masks and upsampling. cpu time idle: ~24 s and ~15 s; native ~1 s each.
const CASES: readonly ParityCase[] = [
  { name: 'width 32, 16³, batch 2', architecture: { width: 32 }, size: 16, batch: 2, seed: 0 },
  { name: 'width 8, 32³, batch 2', architecture: { width: 8 }, size: 32, batch: 2, seed: 9 },
];

interface EngineRun extends Pick<GradientResult, 'loss' | 'grads' | 'bnStats'> {
  readonly evalCounts: MetricCountsJSON;
  readonly probabilities: Float32Array;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const relDiff = (ref: ArrayLike<number>, other: ArrayLike<number>) => maxAbsDiff(ref, other) / maxAbs(ref);

/** The seed init with BN betas at ±BETA_SHIFT on alternate channels (see BETA_SHIFT). */
function initialState(tf: Tfjs, c: ParityCase): UNetState {
  const fresh = UNet3D.create(tf, { seed: c.seed, architecture: c.architecture });
  const state = fresh.state();
  for (const p of fresh.layout.parameters)
    if (p.role === 'beta')
      for (let ch = 0; ch < p.size; ch++) state.weights[p.offset + ch] = ch % 2 ? -BETA_SHIFT : BETA_SHIFT;
  fresh.dispose();
  return state;
}

interface Measured {
  readonly c: ParityCase;
  readonly cpu: EngineRun;
  readonly native: EngineRun;
  /** The exported LayersModel's prediction on native. */
  readonly exported: Float32Array;
  readonly layout: UNetLayout;
  readonly cpuMs: number;
  readonly nativeMs: number;
}

function trainRun(tf: Tfjs, init: UNetState, mb: MicroBatch, key: StepKey): GradientResult {
  const model = UNet3D.fromState(tf, init);
  try {
    return model.computeGradients(mb, key);
  } finally {
    model.dispose();
  }
}

function evalRun(
  tf: Tfjs,
  state: UNetState,
  mb: MicroBatch,
): Pick<EngineRun, 'evalCounts' | 'probabilities'> {
  const model = UNet3D.fromState(tf, state);
  try {
    return {
      evalCounts: model.evaluate(mb, { batch: 0 }).toJSON(),
      probabilities: model.predictProbabilities(mb.image, mb.shape, mb.batch),
    };
  } finally {
    model.dispose();
  }
}

async function measure(c: ParityCase, exportDir: string): Promise<Measured> {
  const mb = syntheticLiverCubes({ seed: c.seed, size: c.size, cases: [0, 1].slice(0, c.batch) });
  const key: StepKey = { seed: c.seed, epoch: 0, step: 0, microBatch: 0 };

  let started = performance.now();
  const cpuTf = (await loadEngine({ engine: 'cpu' })).tf;
  const init = initialState(cpuTf, c);
  const cpuGrad = trainRun(cpuTf, init, mb, key);
  // Both engines evaluate this same updated state (Adam runs in JS): eval differences are the kernels' alone.
  const stepped = UNet3D.fromState(cpuTf, init);
  stepped.applyGradients(cpuGrad.grads, cpuGrad.bnStats);
  const after = stepped.state();
  stepped.dispose();
  const cpu: EngineRun = { ...cpuGrad, ...evalRun(cpuTf, after, mb) };
  const cpuMs = performance.now() - started;

  started = performance.now();
  const tf = (await loadEngine({ engine: 'node', threads: { intraOp: 1, interOp: 1 } })).tf;
  expect(tf.getBackend()).toBe('tensorflow');
  const native: EngineRun = { ...trainRun(tf, init, mb, key), ...evalRun(tf, after, mb) };
  const exportModel = UNet3D.fromState(tf, after);
  await exportTfjsModel(tf, exportModel, exportDir);
  exportModel.dispose();
  const layersModel = await loadExportedModel(tf, exportDir);
  const exported = tf.tidy(() => {
    const x = tf.tensor5d(mb.image, [mb.batch, ...mb.shape, 1]);
    return Float32Array.from((layersModel.predict(x) as tfjs.Tensor).dataSync());
  });
  layersModel.dispose();
  const layout = unetLayout(init.config.architecture);
  return { c, cpu, native, exported, layout, cpuMs, nativeMs: performance.now() - started };
}

/** `block.convK.bias` whose block has `block.bnK`: its exact gradient is 0. */
function feedsBatchNorm(layout: UNetLayout, name: string): boolean {
  const m = /^(\w+)\.conv(\d)\.bias$/.exec(name);
  return m !== null && layout.batchNorms.some((bn) => bn.name === `${m[1]}.bn${m[2]}`);
}

interface GradientReport {
  readonly worst: { readonly name: string; readonly rel: number };
  readonly rel: ReadonlyMap<string, number>;
  /** Largest |gradient| of a BN-fed bias on either engine, over its conv's weight-gradient max. */
  readonly zeroNoise: number;
}

function compareGradients(m: Measured): GradientReport {
  const rel = new Map<string, number>();
  let worst = { name: '', rel: 0 };
  let zeroNoise = 0;
  const slice = (a: Float32Array, p: { offset: number; size: number }) =>
    a.subarray(p.offset, p.offset + p.size);
  for (const p of m.layout.parameters) {
    const a = slice(m.cpu.grads, p);
    const b = slice(m.native.grads, p);
    if (feedsBatchNorm(m.layout, p.name)) {
      const weight = m.layout.parameters.find((q) => q.name === p.name.replace(/bias$/, 'weight'));
      if (!weight) throw new Error(`no weight for ${p.name}`);
      const scale = maxAbs(slice(m.cpu.grads, weight));
      zeroNoise = Math.max(zeroNoise, maxAbs(a) / scale, maxAbs(b) / scale);
      continue;
    }
    const r = relDiff(a, b);
    rel.set(p.name, r);
    if (r >= worst.rel) worst = { name: p.name, rel: r };
  }
  return { worst, rel, zeroNoise };
}

function worstBnLayer(m: Measured): { readonly name: string; readonly rel: number } {
  let worst = { name: '', rel: 0 };
  for (const bn of m.layout.batchNorms)
    for (const [part, start] of [
      ['mean', bn.offset],
      ['variance', bn.offset + bn.channels],
    ] as const) {
      const r = relDiff(
        m.cpu.bnStats.subarray(start, start + bn.channels),
        m.native.bnStats.subarray(start, start + bn.channels),
      );
      if (r >= worst.rel) worst = { name: `${bn.name} ${part}`, rel: r };
    }
  return worst;
}

function argmaxAgreement(m: Measured): number {
  const classes = m.layout.architecture.classes;
  const a = argmaxClasses(m.cpu.probabilities, classes);
  const b = argmaxClasses(m.native.probabilities, classes);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

const sci = (v: number) => v.toExponential(1);

describe.skipIf(!ready)('engine parity: cpu vs native TensorFlow (1 intra-op thread)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  describe.each(CASES)('$name', (c) => {
    let m: Measured;
    beforeAll(async () => {
      const dir = await mkdtemp(join(tmpdir(), 'unet-parity-'));
      dirs.push(dir);
      m = await measure(c, dir);
      const g = compareGradients(m);
      const bn = worstBnLayer(m);
      const record = m.cpu.evalCounts.records[0];
      const nativeRecord = m.native.evalCounts.records[0];
      process.stderr.write(
        `engine parity ${c.name}: loss ${sci(Math.abs(m.cpu.loss - m.native.loss) / Math.abs(m.cpu.loss))}, ` +
          `gradient worst ${sci(g.worst.rel)} (${g.worst.name}), BN-fed bias noise ${sci(g.zeroNoise)} of weight, ` +
          `bnStats ${sci(bn.rel)} (${bn.name}), probabilities ${sci(relDiff(m.cpu.probabilities, m.native.probabilities))}, ` +
          `argmax ${(100 * argmaxAgreement(m)).toFixed(3)} %, eval loss ` +
          `${sci(Math.abs((record?.lossSum ?? 0) - (nativeRecord?.lossSum ?? 0)) / Math.abs(record?.lossSum ?? 1))}, ` +
          `export ${sci(maxAbsDiff(m.native.probabilities, m.exported))} abs; ` +
          `cpu ${(m.cpuMs / 1000).toFixed(1)} s, native ${(m.nativeMs / 1000).toFixed(1)} s\n`,
      );
    }, 180_000);

    it('loss and every gradient tensor (train mode, dropout masks active)', () => {
      expect(Math.abs(m.cpu.loss - m.native.loss) / Math.abs(m.cpu.loss)).toBeLessThanOrEqual(LOSS_REL);
      const g = compareGradients(m);
      expect(g.rel.size).toBe(m.layout.parameters.filter((p) => !feedsBatchNorm(m.layout, p.name)).length);
      const over = [...g.rel].filter(([, r]) => !(r <= GRADIENT_REL)).map(([n, r]) => `${n} ${sci(r)}`);
      expect(over, 'gradient tensors over the bound').toEqual([]);
      expect(g.zeroNoise).toBeLessThanOrEqual(ZERO_GRADIENT_OF_WEIGHT);
    });

    it('BN batch statistics, per layer', () => {
      expect(worstBnLayer(m).rel).toBeLessThanOrEqual(BN_STATS_REL);
    });

    it('eval mode after one update: probabilities, argmax and evaluate() counts', () => {
      expect(relDiff(m.cpu.probabilities, m.native.probabilities)).toBeLessThanOrEqual(PROBABILITIES_REL);
      expect(argmaxAgreement(m)).toBeGreaterThanOrEqual(ARGMAX_AGREEMENT);
      const [a, b] = [m.cpu.evalCounts.records, m.native.evalCounts.records].map((r) => r[0]);
      if (!a || !b) throw new Error('evaluate() returned no record');
      expect(Math.abs(a.lossSum - b.lossSum) / Math.abs(a.lossSum)).toBeLessThanOrEqual(LOSS_REL);
      // Counts may only move by the voxels whose argmax flips at a near-tie.
      const flips = Math.floor((1 - ARGMAX_AGREEMENT) * a.voxels);
      expect(b.voxels).toBe(a.voxels);
      expect(Math.abs(a.correct - b.correct)).toBeLessThanOrEqual(flips);
      const counts = (r: typeof a) => [
        ...r.intersection,
        ...r.predicted,
        ...r.target,
        ...r.cases.flatMap((k) => [...k.liver, ...k.tumour]),
      ];
      const [ca, cb] = [counts(a), counts(b)];
      expect(cb.length).toBe(ca.length);
      expect(maxAbsDiff(ca, cb)).toBeLessThanOrEqual(flips);
    });

    it('the exported LayersModel predicts what predictProbabilities does (native)', () => {
      expect(m.exported.length).toBe(m.native.probabilities.length);
      expect(maxAbsDiff(m.native.probabilities, m.exported)).toBeLessThanOrEqual(EXPORT_ABS);
    });
  });
});
