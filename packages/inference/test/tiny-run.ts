// A briefly trained model in a run-folder layout, as training leaves it: <home>/runs/<id>/spec.json and
// checkpoints/best. Trained in-process on phantom cubes (cpu engine, deterministic, ~10 s on 2 busy cores).
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  discoverDataset,
  generatePhantomDataset,
  loadCube,
  preprocessDataset,
  type Shape3,
} from '@lits-ddp/lits-data';
import { loadEngine, saveCheckpoint, UNet3D } from '@lits-ddp/unet';

/** Phantoms 32×32×16 → seed preset (z forced to 32 slices: 8 padded each side, 2× downscale) → a 16³ grid. */
export const TINY_PREPROCESSING = { preset: 'seed', targetSlices: 32, downscale: 2, cubeSize: 16 } as const;
export const TRAIN_STEPS = 60;

export interface TinyRunOptions {
  /** Phantom size (default 32×32×16). */
  size?: Shape3;
  /** The seed preset's forced slice count (default 32). */
  targetSlices?: number;
  /** Phantoms generated (default 10); those not held out train the model. */
  cases?: number;
  /** Case ids kept out of training and copied to `testDir` (default 8 and 9). */
  heldOut?: number[];
}

export interface TinyRun {
  home: string;
  runDir: string;
  /** Held-out phantoms (volume-N + segmentation-N). */
  testDir: string;
}

export async function trainTinyRun(options: TinyRunOptions = {}): Promise<TinyRun> {
  const heldOut = options.heldOut ?? [8, 9];
  const preprocessing = { ...TINY_PREPROCESSING, targetSlices: options.targetSlices ?? 32 };
  const home = await mkdtemp(join(tmpdir(), 'lits-inference-'));
  const dataset = join(home, 'phantoms');
  await generatePhantomDataset({
    outDir: dataset,
    cases: options.cases ?? 10,
    size: options.size ?? [32, 32, 16],
    seed: 11,
  });
  const { cases } = await discoverDataset(dataset);
  const manifest = await preprocessDataset(
    cases.filter((c) => !heldOut.includes(c.id)),
    { cacheDir: join(home, 'cache'), config: preprocessing },
  );
  const cubes = manifest.entries.map((e) => loadCube(e.file));
  const { tf } = await loadEngine({ engine: 'cpu' });
  const model = UNet3D.create(tf, {
    seed: 1,
    architecture: { width: 4, dropout: 0.05 },
    adam: { lr: 0.005 },
  });
  for (let step = 0; step < TRAIN_STEPS; step++) {
    const c = cubes[step % cubes.length]!;
    model.trainStep([{ image: c.image, label: c.label, batch: 1, shape: c.shape }], {
      seed: 1,
      epoch: 0,
      step,
    });
  }
  const runDir = join(home, 'runs', 'tiny');
  await saveCheckpoint(join(runDir, 'checkpoints', 'best'), { model, epoch: 0, step: TRAIN_STEPS });
  const spec = {
    preprocessing: 'seed',
    'preprocess-slices': preprocessing.targetSlices,
    'preprocess-downscale': preprocessing.downscale,
    'cube-size': preprocessing.cubeSize,
    'unet-width': 4,
  };
  await writeFile(join(runDir, 'spec.json'), `${JSON.stringify(spec, null, 2)}\n`);
  const testDir = join(home, 'test');
  await mkdir(testDir);
  for (const id of heldOut)
    for (const kind of ['volume', 'segmentation'])
      await copyFile(join(dataset, `${kind}-${id}.nii.gz`), join(testDir, `${kind}-${id}.nii.gz`));
  return { home, runDir, testDir };
}
