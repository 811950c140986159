// The 2-worker training step time, split into compute, all-reduce, data and other.
// Seed-width model (width 32: the full 2,339,491-value gradient goes through the all-reduce every step)
// on 16³ phantom cubes (BENCH_CUBE), deterministic mode (exact all-reduce), cpu engine, one micro-batch per
// worker. Real runs use 128³ cubes: 512× the compute for the same all-reduce, so this is the unfavourable case.
// Progress on stderr; the last stdout line is one JSON object.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePhantomDataset } from '@lits-ddp/lits-data';
import { RedisServer } from '@lits-ddp/local-services';
import { resolveSpec } from '@lits-ddp/protocol';
import { launchLocalRun } from '../dist/index.js';

const width = Number(process.env.BENCH_WIDTH ?? 32);
const cube = Number(process.env.BENCH_CUBE ?? 16);
const home = await mkdtemp(join(tmpdir(), 'lits-step-bench-'));
const redis = process.env.REDIS_URL ? undefined : await RedisServer.start();
try {
  const dataset = join(home, 'phantoms');
  await generatePhantomDataset({ outDir: dataset, cases: 6, size: [64, 64, 32], seed: 3 });
  const r = resolveSpec({
    'dataset-path': dataset,
    max_epochs: 2,
    'test-epochs': 2,
    workers: 2,
    'global-batch-size': 2,
    'micro-batch-size': 1,
    'unet-width': width,
    'cube-size': cube,
    'preprocess-slices': 64,
    'preprocess-downscale': 64 / cube,
    'test-percent': 0.2,
    determinism: 'deterministic',
    engine: 'cpu',
    'collective-timeout-s': 120,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const steps = [];
  const result = await launchLocalRun({
    spec: r.spec,
    json: false,
    quiet: true,
    home,
    redisUrl: process.env.REDIS_URL ?? redis.url,
    trackingUri: '',
    onEvent: (e) => {
      if (e.type !== 'progress') return;
      steps.push(e);
      const t = e.timings;
      process.stderr.write(
        `rank ${e.rank} epoch ${e.epoch} step ${e.step}: compute ${t.computeMs.toFixed(0)} ms, all-reduce ${t.allReduceMs.toFixed(0)} ms, data ${t.dataMs.toFixed(0)} ms, other ${t.otherMs.toFixed(0)} ms\n`,
      );
    },
  });
  if (result.status !== 'finished') throw new Error(`run ${result.status}: ${result.error}`);
  // The first epoch warms up tfjs kernels and the cube cache; measure the second.
  const measured = steps.filter((s) => s.epoch === 1);
  const mean = (f) => measured.reduce((a, s) => a + f(s), 0) / measured.length;
  const split = {
    computeMs: mean((s) => s.timings.computeMs),
    allReduceMs: mean((s) => s.timings.allReduceMs),
    dataMs: mean((s) => s.timings.dataMs),
    otherMs: mean((s) => s.timings.otherMs),
  };
  const stepMs = split.computeMs + split.allReduceMs + split.dataMs + split.otherMs;
  const round = (x) => Math.round(x * 10) / 10;
  process.stdout.write(
    `${JSON.stringify({
      stepMs: round(stepMs),
      split: Object.fromEntries(Object.entries(split).map(([k, v]) => [k, round(v)])),
      nonComputeShare: Math.round(((stepMs - split.computeMs) / stepMs) * 1000) / 1000,
      goal: { nonComputeShare: 0.1 },
      config: { workers: 2, width, cube, determinism: 'deterministic', measuredSteps: measured.length },
    })}\n`,
  );
} finally {
  await redis?.dispose();
  await rm(home, { recursive: true, force: true });
}
