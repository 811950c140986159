import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine, saveCheckpoint, UNet3D } from '@lits-ddp/unet';
import { loadPredictor, resolveModelSource, ModelSourceError } from '../src/index.js';

let home: string;
const SPEC = {
  preprocessing: 'seed',
  'preprocess-slices': 64,
  'preprocess-downscale': 2,
  'cube-size': 32,
  lr: 0.003,
};

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'lits-model-source-'));
  const { tf } = await loadEngine({ engine: 'cpu' });
  const model = UNet3D.create(tf, { seed: 0, architecture: { width: 2 } });
  // A run with final and last only; another with best; a lone checkpoint; one with extra.preprocessing.
  await saveCheckpoint(join(home, 'runs', 'a', 'checkpoints', 'final'), { model, epoch: 1, step: 0 });
  await saveCheckpoint(join(home, 'runs', 'a', 'checkpoints', 'last'), { model, epoch: 0, step: 0 });
  await writeFile(join(home, 'runs', 'a', 'spec.json'), JSON.stringify(SPEC));
  await saveCheckpoint(join(home, 'runs', 'b', 'checkpoints', 'best'), { model, epoch: 0, step: 0 });
  await saveCheckpoint(join(home, 'runs', 'b', 'checkpoints', 'final'), { model, epoch: 2, step: 0 });
  await writeFile(
    join(home, 'runs', 'b', 'spec.json'),
    JSON.stringify({ ...SPEC, preprocessing: 'improved' }),
  );
  await saveCheckpoint(join(home, 'lone'), { model, epoch: 0, step: 0 });
  await saveCheckpoint(join(home, 'carries'), {
    model,
    epoch: 0,
    step: 0,
    extra: { preprocessing: { preset: 'seed', targetSlices: 48, downscale: 3, cubeSize: 24 } },
  });
}, 120_000);

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('resolveModelSource', () => {
  it('takes a run folder’s best checkpoint, else final, and the preprocessing from its spec.json', async () => {
    const a = await resolveModelSource(join(home, 'runs', 'a'));
    expect(a).toEqual({
      checkpointDir: join(home, 'runs', 'a', 'checkpoints', 'final'),
      runDir: join(home, 'runs', 'a'),
      preprocessing: { preset: 'seed', targetSlices: 64, downscale: 2, cubeSize: 32 },
      preprocessingFrom: join(home, 'runs', 'a', 'spec.json'),
    });
    const b = await resolveModelSource(join(home, 'runs', 'b'));
    expect(b.checkpointDir).toBe(join(home, 'runs', 'b', 'checkpoints', 'best'));
    expect(b.preprocessing).toEqual({
      preset: 'improved',
      targetSpacing: [1.5, 1.5, 1.5],
      window: [-200, 250],
      cubeSize: 32,
    });
  });

  it('takes a checkpoint folder inside a run and reads ../../spec.json', async () => {
    const last = await resolveModelSource(join(home, 'runs', 'a', 'checkpoints', 'last'));
    expect(last.checkpointDir).toBe(join(home, 'runs', 'a', 'checkpoints', 'last'));
    expect(last.runDir).toBe(join(home, 'runs', 'a'));
    expect(last.preprocessing.cubeSize).toBe(32);
  });

  it('prefers an explicit config, then extra.preprocessing in checkpoint.json', async () => {
    const carried = await resolveModelSource(join(home, 'carries'));
    expect(carried.preprocessing).toEqual({ preset: 'seed', targetSlices: 48, downscale: 3, cubeSize: 24 });
    expect(carried.preprocessingFrom).toBe(`${join(home, 'carries', 'checkpoint.json')} extra.preprocessing`);
    const given = await resolveModelSource(join(home, 'lone'), {
      preset: 'seed',
      targetSlices: 16,
      cubeSize: 8,
    });
    expect(given.preprocessing).toEqual({ preset: 'seed', targetSlices: 16, downscale: 2, cubeSize: 8 });
    expect(given.preprocessingFrom).toBe('option');
  });

  it('explains what is missing or wrong, naming the file and field', async () => {
    await expect(resolveModelSource(join(home, 'lone'))).rejects.toThrow(
      /lone: the preprocessing used in training is unknown: no spec\.json two folders up and no extra\.preprocessing/,
    );
    await expect(resolveModelSource(join(home, 'runs'))).rejects.toThrow(
      `${join(home, 'runs')}: no checkpoint.json here and no checkpoints/{best,final,last}/checkpoint.json`,
    );
    await expect(resolveModelSource(join(home, 'missing'))).rejects.toThrow(
      `${join(home, 'missing')}: not found`,
    );
    await expect(resolveModelSource(join(home, 'runs', 'a', 'spec.json'))).rejects.toThrow(
      /is a file; give a run folder/,
    );
    await mkdir(join(home, 'runs', 'c', 'checkpoints'), { recursive: true });
    const manifest = await readFile(join(home, 'lone', 'checkpoint.json'), 'utf8');
    await mkdir(join(home, 'runs', 'c', 'checkpoints', 'best'));
    await writeFile(join(home, 'runs', 'c', 'checkpoints', 'best', 'checkpoint.json'), manifest);
    await writeFile(join(home, 'runs', 'c', 'spec.json'), JSON.stringify({ ...SPEC, 'cube-size': 30 }));
    const error = await resolveModelSource(join(home, 'runs', 'c')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelSourceError);
    expect((error as Error).message).toBe(
      `${join(home, 'runs', 'c', 'spec.json')}: field "cube-size" must be a positive multiple of 4, got 30`,
    );
    await writeFile(join(home, 'runs', 'c', 'spec.json'), '{ not json');
    await expect(resolveModelSource(join(home, 'runs', 'c'))).rejects.toThrow(/spec\.json: cannot read JSON/);
  });

  it("checks checkpoint.json's extra.preprocessing field by field before using it", async () => {
    const dir = join(home, 'bad-extra');
    await mkdir(dir);
    const manifest = JSON.parse(await readFile(join(home, 'lone', 'checkpoint.json'), 'utf8')) as object;
    const file = join(dir, 'checkpoint.json');
    await writeFile(
      file,
      JSON.stringify({ ...manifest, extra: { preprocessing: { preset: 'improved', cubeSize: '64' } } }),
    );
    const error = await resolveModelSource(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelSourceError);
    expect((error as Error).message).toBe(`${file}: extra.preprocessing: field /cubeSize must be number`);
    await writeFile(file, JSON.stringify({ ...manifest, extra: { preprocessing: { preset: 'other' } } }));
    await expect(resolveModelSource(dir)).rejects.toThrow(
      `${file}: extra.preprocessing: field /preset must be`,
    );
    await writeFile(file, '[]');
    await expect(resolveModelSource(dir)).rejects.toThrow(`${file}: the value must be object`);
  });
});

describe('loadPredictor', () => {
  it('loads the checkpoint on the requested engine with the training cube as the default window', async () => {
    const p = await loadPredictor({ model: join(home, 'runs', 'a'), engine: 'cpu' });
    expect(p.window).toBe(32);
    expect(p.classes).toBe(3);
    expect(p.engine).toMatch(/^engine cpu/);
    expect(p.model.layout.architecture.width).toBe(2);
  });
});
