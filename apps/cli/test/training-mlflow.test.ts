import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { MlflowServer } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { MlflowClient } from '@lits-ddp/mlflow-client';
import { phantomSet, runTiny, tinySpec } from './phantom-runs.js';

const haveServices = serviceUrl('redis') !== undefined && serviceUrl('mlflow') !== undefined;
const SEED_METRICS = ['avg_loss', 'avg_acc', 'mean_iou', 'iou_0', 'iou_1', 'iou_2'];

describe.skipIf(!haveServices)('training logged to a real MLflow server', () => {
  let home: string;
  let dataset: string;
  let mlflow: MlflowServer;

  beforeAll(async () => {
    ({ home, dataset } = await phantomSet());
    mlflow = await MlflowServer.start();
  });
  afterAll(async () => {
    await mlflow?.dispose();
    await rm(home, { recursive: true, force: true });
  });

  it('loses nothing when MLflow is down for part of the run, and the run reads back whole', async () => {
    const spec = tinySpec(dataset, {
      max_epochs: 6,
      'test-epochs': 2,
      'experiment-name': 'lits-ddp-test',
      'run-name': 'outage',
    });
    let stopped = false;
    let outage: Promise<void> | undefined;
    const { result } = await runTiny(home, spec, {
      trackingUri: mlflow.url,
      onEvent: (e) => {
        if (!stopped && e.type === 'metrics' && e.epoch === 0) {
          stopped = true;
          outage = (async () => {
            await mlflow.stop();
            await new Promise((r) => setTimeout(r, 8000));
            await mlflow.start();
          })();
        }
      },
    });
    await outage;
    expect(stopped).toBe(true);
    expect(result.status, result.error).toBe('finished');
    expect(result.tracker.kind).toBe('mlflow');
    expect(result.tracker.delivered).toBe(true);

    const client = new MlflowClient({ trackingUri: mlflow.url });
    const run = await client.getRun(result.tracker.runId);
    expect(run.info.status).toBe('FINISHED');
    const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
    for (const [k, v] of Object.entries(spec)) expect(params[k], k).toBe(String(v));
    const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({
      mode: 'deterministic',
      world_size: '2',
      engine: 'cpu',
      'mlflow.runName': 'outage',
    });
    expect(tags['mlflow.source.git.commit']).toMatch(/^[0-9a-f]{40}$/);

    for (const m of SEED_METRICS) {
      const train = await client.getMetricHistory(result.tracker.runId, `train_${m}`);
      expect(
        train.map((p) => p.step),
        `train_${m}`,
      ).toEqual([0, 1, 2, 3, 4, 5]);
      const val = await client.getMetricHistory(result.tracker.runId, `val_${m}`);
      expect(
        val.map((p) => p.step),
        `val_${m}`,
      ).toEqual([1, 3, 5]);
      const test = await client.getMetricHistory(result.tracker.runId, `test_${m}`);
      expect(
        test.map((p) => p.value),
        `test_${m}`,
      ).toEqual([result.testMetrics?.[`test_${m}`]]);
    }
    const top = (await client.listArtifacts(result.tracker.runId)).map((f) => f.path).sort();
    expect(top).toEqual(['checkpoints', 'model', 'model_summary.txt', 'reports', 'spec.json', 'split.json']);
    const checkpoints = (await client.listArtifacts(result.tracker.runId, 'checkpoints'))
      .map((f) => f.path)
      .sort();
    expect(checkpoints).toEqual(['checkpoints/best', 'checkpoints/final']);
    const reports = (await client.listArtifacts(result.tracker.runId, 'reports')).map((f) => f.path).sort();
    expect(reports).toEqual(['reports/system_report.html', 'reports/system_report.json']);
    const summary = Buffer.from(
      await client.downloadArtifact(result.tracker.runId, 'model_summary.txt'),
    ).toString();
    expect(summary).toMatch(/UNet3D width 2/);
  });
});
