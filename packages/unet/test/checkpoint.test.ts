import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CheckpointError,
  ExportedModelError,
  exportTfjsModel,
  loadCheckpoint,
  loadEngine,
  loadExportedModel,
  ReduceLROnPlateau,
  saveCheckpoint,
  syntheticLiverCubes,
  UNet3D,
  type Tfjs,
} from '../src/index.js';

let tf: Tfjs;
const dirs: string[] = [];
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'unet-test-'));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  tf = (await loadEngine({ engine: 'cpu' })).tf;
});
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function trainedModel(steps: number): { model: UNet3D; scheduler: ReduceLROnPlateau } {
  const model = UNet3D.create(tf, { seed: 21, architecture: { width: 2 }, adam: { lr: 1e-3 } });
  const scheduler = new ReduceLROnPlateau(1e-3);
  for (let step = 0; step < steps; step++) {
    const mb = syntheticLiverCubes({ seed: 21, size: 8, cases: [step, step + 100] });
    scheduler.step(model.trainStep([mb], { seed: 21, epoch: 1, step }).loss);
  }
  return { model, scheduler };
}

describe('checkpoints', () => {
  it('round-trip weights, BN statistics, Adam moments, scheduler, epoch/step, rng and extra exactly', async () => {
    const dir = await tempDir();
    const { model, scheduler } = trainedModel(2);
    const extra = { run: 'abc', bestTrainLoss: 0.5 };
    const rng = { seed: 21, dataSeed: 'data-21', epoch: 1, step: 2 };
    await saveCheckpoint(dir, { model, scheduler, epoch: 1, step: 2, rng, extra });
    const loaded = await loadCheckpoint(tf, dir);
    expect(loaded.manifest.version).toBe(2);
    // Number and string seeds stay what they were: 21 and '21' key different counter-rng streams.
    expect(loaded.rng).toEqual(rng);
    expect(loaded.manifest.rng).toEqual(rng);
    expect(loaded.model.weightHash()).toBe(model.weightHash());
    const [a, b] = [model.state(), loaded.model.state()];
    expect(b.config).toEqual(a.config);
    expect(b.adamStep).toBe(2);
    expect(b.bnBatchesTracked).toBe(2);
    expect(Buffer.from(b.adamM.buffer).equals(Buffer.from(a.adamM.buffer))).toBe(true);
    expect(Buffer.from(b.adamV.buffer).equals(Buffer.from(a.adamV.buffer))).toBe(true);
    expect(loaded.scheduler!.state()).toEqual(scheduler.state());
    expect([loaded.epoch, loaded.step, loaded.extra]).toEqual([1, 2, extra]);
    expect(loaded.manifest.parameters[0]).toEqual({
      name: 'inc.conv1.weight',
      shape: [3, 3, 3, 1, 2],
      offset: 0,
    });
  });

  it('records the engine identity it was trained on, and refuses a malformed one naming the field', async () => {
    const dir = await tempDir();
    const { model } = trainedModel(1);
    const engine = {
      name: 'node',
      version: '4.22.0',
      libtensorflow: '2.18.1',
      threads: { intraOp: 1, interOp: 1 },
    } as const;
    await saveCheckpoint(dir, { model, epoch: 0, step: 1, engine });
    expect((await loadCheckpoint(tf, dir)).engine).toEqual(engine);
    // Older checkpoints and inference ones have none: that is "unknown", not an error.
    await saveCheckpoint(dir, { model, epoch: 0, step: 1 });
    expect((await loadCheckpoint(tf, dir)).engine).toBeNull();
    const path = join(dir, 'checkpoint.json');
    const manifest = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(
      path,
      JSON.stringify({ ...manifest, engine: { ...engine, threads: { intraOp: 'one' } } }),
    );
    await expect(loadCheckpoint(tf, dir)).rejects.toThrow(
      /checkpoint\.json: engine: engine identity threads must be null or \{ intraOp, interOp \} integers/,
    );
  });

  it('writes atomically: no temp files left, one blob per directory, overwrite keeps it loadable', async () => {
    const dir = await tempDir();
    const first = trainedModel(1).model;
    await saveCheckpoint(dir, { model: first, epoch: 0, step: 1 });
    const second = trainedModel(2).model;
    await saveCheckpoint(dir, { model: second, epoch: 0, step: 2 });
    const files = (await readdir(dir)).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(/^checkpoint-[0-9a-f]{16}\.bin$/);
    expect(files[1]).toBe('checkpoint.json');
    expect((await loadCheckpoint(tf, dir)).model.weightHash()).toBe(second.weightHash());
  });

  it('refuses corrupt or foreign files with errors naming the file and the reason', async () => {
    const dir = await tempDir();
    await saveCheckpoint(dir, { model: trainedModel(1).model, epoch: 0, step: 1 });
    const manifestPath = join(dir, 'checkpoint.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
    const blobPath = join(dir, (manifest['blob'] as { file: string }).file);

    const blob = await readFile(blobPath);
    blob[100] = blob[100]! ^ 0xff;
    await writeFile(blobPath, blob);
    await expect(loadCheckpoint(tf, dir)).rejects.toThrow(`checkpoint ${blobPath}: is corrupt: its SHA-256`);

    await writeFile(manifestPath, JSON.stringify({ ...manifest, version: 99 }));
    await expect(loadCheckpoint(tf, dir)).rejects.toThrow(
      /checkpoint .*checkpoint.json: version 99 is not supported/,
    );
    await writeFile(manifestPath, JSON.stringify({ ...manifest, step: -1 }));
    await expect(loadCheckpoint(tf, dir)).rejects.toThrow(/field 'step' must be a non-negative integer/);
    await writeFile(manifestPath, '{"format": "lits-unet-checkpoint", ');
    await expect(loadCheckpoint(tf, dir)).rejects.toBeInstanceOf(CheckpointError);
    await expect(loadCheckpoint(tf, dir)).rejects.toMatchObject({ code: 'CHECKPOINT_INVALID' });
    const sections = manifest['sections'] as Record<string, unknown>[];
    await writeFile(
      manifestPath,
      JSON.stringify({
        ...manifest,
        sections: [sections[0], { ...sections[1], offset: 'x' }, ...sections.slice(2)],
      }),
    );
    await expect(loadCheckpoint(tf, dir)).rejects.toThrow(
      /checkpoint .*checkpoint\.json: field \/sections\/1\/offset /,
    );
    await expect(loadCheckpoint(tf, join(dir, 'missing'))).rejects.toThrow(
      /checkpoint\.json: cannot be read \(ENOENT\)/,
    );
  });

  it('a loaded checkpoint continues training bit-identically, keyed by its rng', async () => {
    const dir = await tempDir();
    const straight = trainedModel(3).model;
    const { model, scheduler } = trainedModel(2);
    await saveCheckpoint(dir, {
      model,
      scheduler,
      epoch: 1,
      step: 2,
      rng: { seed: 21, dataSeed: 21, epoch: 1, step: 2 },
    });
    const loaded = await loadCheckpoint(tf, dir);
    const { seed, dataSeed, epoch, step } = loaded.rng!;
    const mb = syntheticLiverCubes({ seed: dataSeed as number, size: 8, cases: [step, step + 100] });
    loaded.model.trainStep([mb], { seed, epoch, step });
    expect(loaded.model.weightHash()).toBe(straight.weightHash());
  });

  it('reads version 1 (no rng) as rng null; a checkpoint saved without rng stores null', async () => {
    const dir = await tempDir();
    const { model } = trainedModel(1);
    await saveCheckpoint(dir, { model, epoch: 0, step: 1 });
    const manifestPath = join(dir, 'checkpoint.json');
    const v2 = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
    expect(v2['rng']).toBeNull();
    // A version-1 manifest is the version-2 one without the rng field.
    const v1: Record<string, unknown> = { ...v2, version: 1 };
    delete v1['rng'];
    await writeFile(manifestPath, JSON.stringify(v1));
    const loaded = await loadCheckpoint(tf, dir);
    expect(loaded.manifest.version).toBe(1);
    expect(loaded.rng).toBeNull();
    expect(loaded.model.weightHash()).toBe(model.weightHash());
    // Version 2 must say rng explicitly (null or the full record).
    await writeFile(manifestPath, JSON.stringify({ ...v1, version: 2 }));
    await expect(loadCheckpoint(tf, dir)).rejects.toThrow(/checkpoint\.json: field 'rng' is missing/);
  });

  it('refuses a bad rng on save and on load, naming the field', async () => {
    const dir = await tempDir();
    const { model } = trainedModel(1);
    const rng = { seed: 3, dataSeed: 3, epoch: 0, step: 1 };
    await expect(
      saveCheckpoint(dir, { model, epoch: 0, step: 1, rng: { ...rng, step: -1 } }),
    ).rejects.toThrow('checkpoint rng.step must be a non-negative integer, got -1');
    await expect(
      saveCheckpoint(dir, { model, epoch: 0, step: 1, rng: { ...rng, seed: 1.5 } }),
    ).rejects.toThrow('checkpoint rng.seed must be a non-negative integer or a string, got 1.5');
    await saveCheckpoint(dir, { model, epoch: 0, step: 1, rng });
    const manifestPath = join(dir, 'checkpoint.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
    await writeFile(manifestPath, JSON.stringify({ ...manifest, rng: { ...rng, dataSeed: null } }));
    await expect(loadCheckpoint(tf, dir)).rejects.toThrow(
      /checkpoint\.json: rng\.dataSeed must be a non-negative integer or a string, got null/,
    );
    await writeFile(manifestPath, JSON.stringify({ ...manifest, rng: { ...rng, stepp: 1 } }));
    await expect(loadCheckpoint(tf, dir)).rejects.toThrow(/rng has unknown field\(s\) stepp/);
  });
});

describe('tfjs LayersModel export', () => {
  it('writes model.json + weights.bin that tf.loadLayersModel reads and that predicts like the model', async () => {
    const dir = await tempDir();
    const { model } = trainedModel(3);
    const path = await exportTfjsModel(tf, model, dir);
    const json = JSON.parse(await readFile(path, 'utf8')) as { format: string; weightsManifest: unknown[] };
    expect(json.format).toBe('layers-model');
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);

    const exported = await loadExportedModel(tf, dir);
    const input = syntheticLiverCubes({ seed: 3, size: 8, cases: [50] });
    const expected = model.predictProbabilities(input.image, input.shape);
    const got = (
      exported.predict(tf.tensor5d(input.image, [1, 8, 8, 8, 1])) as ReturnType<typeof tf.tensor5d>
    ).dataSync();
    expect(got.length).toBe(expected.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - expected[i]!));
    expect(worst).toBeLessThan(1e-5);
  });

  it('refuses a model.json with a bad field or a weight path out of its folder, naming the file', async () => {
    const dir = await tempDir();
    const path = await exportTfjsModel(tf, trainedModel(3).model, dir);
    const json = JSON.parse(await readFile(path, 'utf8')) as { weightsManifest: { paths: string[] }[] };
    const group = json.weightsManifest[0]!;
    await writeFile(
      path,
      JSON.stringify({ ...json, weightsManifest: [{ ...group, paths: ['../weights.bin'] }] }),
    );
    await expect(loadExportedModel(tf, dir)).rejects.toThrow(
      /model\.json: field \/weightsManifest\/0\/paths\/0 /,
    );
    await writeFile(path, JSON.stringify({ ...json, modelTopology: 'none' }));
    await expect(loadExportedModel(tf, dir)).rejects.toBeInstanceOf(ExportedModelError);
    await expect(loadExportedModel(tf, join(dir, 'missing'))).rejects.toMatchObject({
      code: 'EXPORTED_MODEL_INVALID',
      message: expect.stringMatching(/model\.json: cannot be read \(ENOENT\)/),
    });
  });
});
