import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from '@lits-ddp/mlflow-client';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { LocalRunTracker, MlflowRunTracker } from '../src/index.js';

let work: string;
let artifactFile: string;
let artifactDir: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'trackers-'));
  artifactFile = join(work, 'spec.json');
  await writeFile(artifactFile, '{"lr":0.0001}');
  artifactDir = join(work, 'checkpoint');
  await mkdir(artifactDir);
  await writeFile(join(artifactDir, 'manifest.json'), '{}');
  await writeFile(join(artifactDir, 'weights.bin'), new Uint8Array([1, 2, 3]));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('LocalRunTracker', () => {
  it('writes params, tags, metrics by epoch and artifacts into the run folder', async () => {
    const dir = join(work, 'runs', 'r1');
    const t = new LocalRunTracker(dir, 'r1', 'demo');
    t.logParams({ lr: 0.0001, workers: 2 });
    t.setTags({ mode: 'deterministic' });
    t.logMetrics({ train_avg_loss: 0.5 }, 0);
    t.logMetrics({ train_avg_loss: 0.25, val_mean_iou: 0.4 }, 1);
    t.logArtifact(artifactFile);
    t.logArtifact(artifactDir, 'checkpoints/best');
    expect(await t.finish('FINISHED')).toEqual({ delivered: true, pending: 0 });
    expect(JSON.parse(await readFile(join(dir, 'params.json'), 'utf8'))).toEqual({
      lr: '0.0001',
      workers: '2',
    });
    expect(JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8'))).toMatchObject({
      runId: 'r1',
      status: 'FINISHED',
    });
    const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.key, l.value, l.step])).toEqual([
      ['train_avg_loss', 0.5, 0],
      ['train_avg_loss', 0.25, 1],
      ['val_mean_iou', 0.4, 1],
    ]);
    expect(await readFile(join(dir, 'artifacts', 'checkpoints', 'best', 'weights.bin'))).toEqual(
      Buffer.from([1, 2, 3]),
    );
    expect(await readFile(join(dir, 'artifacts', 'spec.json'), 'utf8')).toBe('{"lr":0.0001}');
  });
});

const trackingUri = serviceUrl('mlflow');
describe.skipIf(!trackingUri)('MlflowRunTracker', () => {
  it('logs a run that reads back with params, metrics per epoch, tags, artifacts and status', async () => {
    const experimentName = `tracker-${randomUUID()}`;
    const t = await MlflowRunTracker.create({
      trackingUri,
      experimentName,
      runName: 'tracked',
      tags: { mode: 'seed' },
    });
    t.logParams({ lr: 0.0001 });
    t.setTags({ world_size: '2' });
    for (let epoch = 0; epoch < 3; epoch++) t.logMetrics({ train_avg_loss: 1 / (epoch + 1) }, epoch);
    t.logArtifact(artifactFile);
    t.logArtifact(artifactDir, 'checkpoints/final');
    expect(await t.finish('FINISHED', 60_000)).toEqual({ delivered: true, pending: 0 });

    const client = new MlflowClient({ trackingUri });
    const run = await client.getRun(t.trackingRunId);
    expect(run.info.status).toBe('FINISHED');
    expect(run.data.params).toEqual([{ key: 'lr', value: '0.0001' }]);
    const tags = Object.fromEntries(run.data.tags.map((x) => [x.key, x.value]));
    expect(tags).toMatchObject({
      mode: 'seed',
      world_size: '2',
      'mlflow.runName': 'tracked',
      'mlflow.source.type': 'JOB',
    });
    const history = await client.getMetricHistory(t.trackingRunId, 'train_avg_loss');
    expect(history.map((m) => [m.step, m.value])).toEqual([
      [0, 1],
      [1, 0.5],
      [2, 1 / 3],
    ]);
    const files = await client.listArtifacts(t.trackingRunId, 'checkpoints/final');
    expect(files.map((f) => f.path).sort()).toEqual([
      'checkpoints/final/manifest.json',
      'checkpoints/final/weights.bin',
    ]);
    expect(t.location).toContain(`/runs/${t.trackingRunId}`);
  });

  it('reports an entry MLflow refused as not delivered, and still delivers the rest', async () => {
    const errors: string[] = [];
    const t = await MlflowRunTracker.create({
      trackingUri,
      experimentName: `tracker-${randomUUID()}`,
      runName: 'refused',
      onError: (m) => errors.push(m),
    });
    // A second writer gives the param another value: MLflow refuses ours (params are write-once).
    const other = new MlflowClient({ trackingUri });
    await other.logBatch(t.trackingRunId, { params: [{ key: 'lr', value: '0.1' }] });
    t.logParams({ lr: 0.0001 });
    for (let epoch = 0; epoch < 3; epoch++) t.logMetrics({ train_avg_loss: epoch }, epoch);
    const finished = await t.finish('FINISHED', 60_000);
    expect(finished).toMatchObject({ delivered: false, pending: 0, rejected: 1 });
    expect(finished.lastError).toMatch(/lr/);
    expect(errors.join('\n')).toMatch(/lr/);
    const history = await other.getMetricHistory(t.trackingRunId, 'train_avg_loss');
    expect(history.map((m) => m.step)).toEqual([0, 1, 2]);
    expect((await other.getRun(t.trackingRunId)).info.status).toBe('FINISHED');
  });
});
