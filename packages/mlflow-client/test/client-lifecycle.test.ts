import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { MlflowApiError, MlflowClient, systemTags, type Metric } from '../src/index.js';

const trackingUri = serviceUrl('mlflow');

describe.skipIf(!trackingUri)('MlflowClient against a real MLflow server', () => {
  let client: MlflowClient;
  let work: string;

  beforeAll(async () => {
    client = new MlflowClient({ trackingUri });
    work = await mkdtemp(join(tmpdir(), 'mlflow-client-test-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('runs the full life cycle and reads every part back', async () => {
    const name = `lifecycle-${randomUUID()}`;
    const [a, b] = await Promise.all([
      client.getOrCreateExperiment(name),
      client.getOrCreateExperiment(name),
    ]);
    expect(a.experimentId).toBe(b.experimentId);
    expect((await client.getOrCreateExperiment(name)).experimentId).toBe(a.experimentId);
    expect((await client.getExperimentByName(name))?.name).toBe(name);

    const startTime = Date.now() - 5000;
    const run = await client.createRun({
      experimentId: a.experimentId,
      runName: 'life-cycle',
      startTime,
      tags: systemTags({ sourceName: 'client-lifecycle.test.ts', gitCommit: 'a'.repeat(40) }),
    });
    const runId = run.info.runId;
    expect(run.info.status).toBe('RUNNING');
    expect(run.info.runName).toBe('life-cycle');

    const params = Object.fromEntries(
      Array.from({ length: 30 }, (_, i) => [`param_${i}`, i % 2 ? `v${i}` : i * 0.5]),
    );
    await client.logParams(runId, params);
    await client.logParams(runId, { param_0: 0 }); // same value again: skipped, no error

    const keys = ['train_avg_loss', 'val_mean_iou', 'test_iou_2'];
    const sent: Metric[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 2500; i++) {
      const key = keys[i % 3] as string;
      sent.push({ key, value: Math.sin(i) * 10 ** (i % 7), step: Math.floor(i / 3), timestamp: t0 + i });
    }
    await client.logBatch(runId, { metrics: sent });
    await client.setTag(runId, 'mode', 'deterministic');
    await client.logBatch(runId, { tags: [{ key: 'world_size', value: '2' }] });

    const file = join(work, 'model_summary.txt');
    await writeFile(file, 'UNet3D 2,339,491 params\n');
    await client.logArtifact(runId, file);
    const folder = join(work, 'reports');
    await mkdir(join(folder, 'nested'), { recursive: true });
    await writeFile(join(folder, 'system.json'), '{"cpu":"test"}');
    await writeFile(join(folder, 'nested', 'deep.bin'), new Uint8Array([0, 1, 2, 255]));
    expect(await client.logArtifacts(runId, folder, 'reports')).toBe(2);

    const endTime = Date.now();
    const info = await client.updateRun(runId, { status: 'FINISHED', endTime });
    expect(info.status).toBe('FINISHED');

    const back = await client.getRun(runId);
    expect(back.info.status).toBe('FINISHED');
    expect(back.info.startTime).toBe(startTime);
    expect(back.info.endTime).toBe(endTime);
    const backParams = Object.fromEntries(back.data.params.map((p) => [p.key, p.value]));
    expect(backParams).toEqual(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])));
    const tags = Object.fromEntries(back.data.tags.map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({
      mode: 'deterministic',
      world_size: '2',
      'mlflow.runName': 'life-cycle',
      'mlflow.source.name': 'client-lifecycle.test.ts',
      'mlflow.source.type': 'LOCAL',
      'mlflow.source.git.commit': 'a'.repeat(40),
    });
    expect(tags['mlflow.user']).toBeTruthy();

    for (const key of keys) {
      const history = await client.getMetricHistory(runId, key);
      const expected = sent.filter((m) => m.key === key);
      expect(history.map((m) => [m.step, m.value, m.timestamp])).toEqual(
        expected.map((m) => [m.step, m.value, m.timestamp]),
      );
    }

    const top = await client.listArtifacts(runId);
    expect(top.map((f) => [f.path, f.isDir]).sort()).toEqual([
      ['model_summary.txt', false],
      ['reports', true],
    ]);
    const reports = await client.listArtifacts(runId, 'reports');
    expect(reports.map((f) => f.path).sort()).toEqual(['reports/nested', 'reports/system.json']);
    expect(reports.find((f) => f.path === 'reports/system.json')?.fileSize).toBe(14);
    expect(Array.from(await client.downloadArtifact(runId, 'reports/nested/deep.bin'))).toEqual([
      0, 1, 2, 255,
    ]);

    const found = await client.searchRuns({
      experimentIds: [a.experimentId],
      filter: 'params.param_1 = "v1" and tags.mode = "deterministic"',
    });
    expect(found.map((r) => r.info.runId)).toEqual([runId]);
    const none = await client.searchRuns({ experimentIds: [a.experimentId], filter: 'tags.mode = "random"' });
    expect(none).toEqual([]);
  });

  it('maps an unknown run to the typed not-found error', async () => {
    const err = await client.getRun('0'.repeat(32)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    const apiErr = err as MlflowApiError;
    expect(apiErr.errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(apiErr.httpStatus).toBe(404);
    expect(apiErr.isNotFound).toBe(true);
    expect(apiErr.message).toMatch(/runs\/get/);
  });

  it('maps an invalid parameter to the typed invalid-parameter error', async () => {
    const exp = await client.getOrCreateExperiment(`errors-${randomUUID()}`);
    const run = await client.createRun({ experimentId: exp.experimentId });
    await client.logParams(run.info.runId, { lr: '0.0001' });
    // A second client has no memory of the first value, so the server itself must refuse the change.
    const other = new MlflowClient({ trackingUri });
    const err = await other.logParams(run.info.runId, { lr: '0.1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect((err as MlflowApiError).httpStatus).toBe(400);
    expect((err as MlflowApiError).isInvalidParameter).toBe(true);
    // The first client refuses it locally, naming the param.
    await expect(client.logParams(run.info.runId, { lr: '0.1' })).rejects.toThrow(
      /param lr: already logged as "0.0001"/,
    );
  });
});
