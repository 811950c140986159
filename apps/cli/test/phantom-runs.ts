import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePhantomDataset, loadCube } from '@lits-ddp/lits-data';
import {
  DEFAULT_ENGINE_THREADS,
  resolveSpec,
  type ExperimentSpecInput,
  type ResolvedSpec,
  type RunEvent,
} from '@lits-ddp/protocol';
import { loadCheckpoint, loadEngine, MetricCounts } from '@lits-ddp/unet';
import type { ExperimentResult } from '@lits-ddp/orchestrator';
import { launchLocalRun, type WorkerProcesses } from '../src/index.js';

/** 8 phantom cases of 32×32×16 → 16³ cubes; 6 train (2 steps of K = 4 per epoch), 2 test. */
export async function phantomSet(): Promise<{ home: string; dataset: string }> {
  const home = await mkdtemp(join(tmpdir(), 'lits-train-test-'));
  const dataset = join(home, 'phantoms');
  await generatePhantomDataset({ outDir: dataset, cases: 8, size: [32, 32, 16], seed: 7 });
  return { home, dataset };
}

/** The tiny training config: 16³ cubes, U-Net width 2, K = 4 micro-batches, 2 workers, 3 epochs. */
export function tinySpecInput(dataset: string, extra: ExperimentSpecInput = {}): ExperimentSpecInput {
  return {
    'dataset-path': dataset,
    max_epochs: 3,
    'test-epochs': 1,
    'global-batch-size': 4,
    'micro-batch-size': 1,
    workers: 2,
    'unet-width': 2,
    'cube-size': 16,
    'preprocess-slices': 32,
    'preprocess-downscale': 2,
    'test-percent': 0.25,
    lr: 0.01,
    determinism: 'deterministic',
    engine: 'cpu',
    'collective-timeout-s': 20,
    'heartbeat-interval-s': 1,
    'max-restarts': 2,
    ...extra,
  };
}

export function tinySpec(dataset: string, extra: ExperimentSpecInput = {}): ResolvedSpec {
  const r = resolveSpec(tinySpecInput(dataset, extra));
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

export interface ObservedRun {
  result: ExperimentResult;
  events: Array<{ at: number; event: RunEvent }>;
}

export async function runTiny(
  home: string,
  spec: ResolvedSpec,
  opts: { trackingUri?: string; onEvent?: (e: RunEvent, w: WorkerProcesses) => void } = {},
): Promise<ObservedRun> {
  const events: ObservedRun['events'] = [];
  const result = await launchLocalRun({
    spec,
    json: false,
    quiet: true,
    home,
    redisUrl: process.env.REDIS_URL as string,
    ...(opts.trackingUri ? { trackingUri: opts.trackingUri } : {}),
    onEvent: (event, workers) => {
      events.push({ at: Date.now(), event });
      opts.onEvent?.(event, workers);
    },
  });
  return { result, events };
}

/** Evaluates the run's best checkpoint on its test cubes in this one process, batch by batch, on `engine`. */
export async function singleProcessTestMetrics(
  runDir: string,
  testBatchSize: number,
  engine: 'cpu' | 'node' = 'cpu',
): Promise<Record<string, number>> {
  const split = JSON.parse(await readFile(join(runDir, 'split.json'), 'utf8')) as {
    testCases: Array<{ cacheFile: string }>;
    cacheDir: string;
  };
  // The workers' thread count: a native engine's bits depend on it.
  const { tf } = await loadEngine({ engine, threads: { intraOp: DEFAULT_ENGINE_THREADS, interOp: 1 } });
  const { model } = await loadCheckpoint(tf, join(runDir, 'checkpoints', 'best'));
  const cubes = split.testCases.map((c) => loadCube(join(split.cacheDir, c.cacheFile)));
  let counts = MetricCounts.empty(model.config.architecture.classes);
  for (let b = 0; b * testBatchSize < cubes.length; b++) {
    const part = cubes.slice(b * testBatchSize, (b + 1) * testBatchSize);
    const voxels = part[0]!.image.length;
    const image = new Float32Array(voxels * part.length);
    const label = new Uint8Array(voxels * part.length);
    part.forEach((c, j) => {
      image.set(c.image, j * voxels);
      label.set(c.label, j * voxels);
    });
    counts = counts.merge(
      model.evaluate({ image, label, batch: part.length, shape: part[0]!.shape }, { batch: b }),
    );
  }
  return counts.toSeedMetrics('test');
}
