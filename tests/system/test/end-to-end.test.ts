import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { chromium } from 'playwright-core';
import { ensureChromium } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { MlflowClient } from '@lits-ddp/mlflow-client';
import type { RunEvent } from '@lits-ddp/protocol';
import { CoordinatorClient } from '@lits-ddp/coordinator-client';
import {
  CoordinatorProcess,
  lastRunEventId,
  phantomHome,
  tinySpec,
  TOKEN,
  waitFor,
  waitForIdleWorkers,
  waitForRunEvent,
  Workers,
} from './process-harness.js';

const keyPrefix = `e2e-${randomBytes(3).toString('hex')}`;
// The processes get it in their environment; this one needs it to name the runs' keys when it reads Redis itself.
process.env.LITS_KEY_PREFIX = keyPrefix;
const redisUrl = serviceUrl('redis');
const trackingUri = serviceUrl('mlflow');
const SEED_METRICS = ['avg_loss', 'avg_acc', 'mean_iou', 'iou_0', 'iou_1', 'iou_2'];

/** The MLflow run tagged with our experiment id; exactly one must exist. */
async function mlflowRuns(mlflow: MlflowClient, experimentName: string, id: string) {
  const exp = await mlflow.getExperimentByName(experimentName);
  if (!exp) return [];
  return mlflow.searchRuns({ experimentIds: [exp.experimentId], filter: `tags."lits.runId" = "${id}"` });
}

describe.skipIf(!redisUrl || !trackingUri)('coordinator, 2 workers, Redis and MLflow as processes', () => {
  let coordinator: CoordinatorProcess;
  let workers: Workers;
  let client: CoordinatorClient;
  let mlflow: MlflowClient;
  let base: string;
  let logsDir: string;
  let chromiumPath: string;

  beforeAll(async () => {
    // Fails (never skips) when Chromium cannot be had; installs it with apt-get as root.
    chromiumPath = ensureChromium();
    const dirs = await phantomHome();
    base = dirname(dirs.dataRoot);
    logsDir = dirs.logs;
    // BullMQ's default lock (60 s) and stalled check (30 s): a killed coordinator's job is still taken over within
    // seconds, because the next coordinator sees that the lock's holder stopped beating.
    coordinator = await CoordinatorProcess.start({
      redisUrl: redisUrl as string,
      trackingUri: trackingUri as string,
      ...dirs,
      keyPrefix,
    });
    workers = new Workers({ ...process.env, REDIS_URL: redisUrl, LITS_KEY_PREFIX: keyPrefix }, dirs.logs);
    workers.start('w0');
    workers.start('w1');
    client = new CoordinatorClient({ url: coordinator.url, token: TOKEN });
    mlflow = new MlflowClient({ trackingUri: trackingUri as string });
    await waitForIdleWorkers(client, 2);
  });

  afterAll(async () => {
    await coordinator?.kill('SIGTERM');
    await workers?.stopAll();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('trains a submitted experiment, streams it over SSE to the end, and MLflow holds the run', async () => {
    const spec = tinySpec({ 'experiment-name': `e2e-${keyPrefix}`, 'run-name': 'submitted' });
    const { id, status } = await client.submit(spec, { idempotencyKey: `first-${keyPrefix}` });
    expect(status).toBe('queued');
    const events: RunEvent[] = [];
    const ids: string[] = [];
    const end = await client.follow(id, (m) => {
      if (m.kind === 'event') {
        events.push(m.event);
        ids.push(m.id);
      }
    });
    expect(end.status).toBe('finished');
    // Every stream id once, in order: nothing lost or repeated.
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);
    const statuses = events.flatMap((e) => (e.type === 'status' ? [e.status] : []));
    expect(statuses).toEqual(['queued', 'preparing', 'running', 'finished']);
    expect(events.filter((e) => e.type === 'progress').length).toBeGreaterThanOrEqual(2 * 3 * 2);
    expect(
      events
        .filter((e) => e.type === 'finished')
        .map((e) => (e as { rank: number }).rank)
        .sort(),
    ).toEqual([0, 1]);

    const detail = await client.get(id);
    expect(detail.status).toBe('finished');
    expect(detail.tracking?.kind).toBe('mlflow');
    expect(detail.tracking?.url).toContain(detail.tracking?.runId);
    expect(detail.workerIds?.sort()).toEqual(['w0', 'w1']);
    expect(detail.progress?.fraction).toBe(1);
    // The checkpoint `lits predict --model` loads, and the tfjs export, each under its own name.
    expect(detail.model?.checkpoint?.kind).toBe('best');
    const manifest = JSON.parse(
      readFileSync(join(detail.model?.checkpoint?.path ?? '', 'checkpoint.json'), 'utf8'),
    ) as { epoch?: unknown; extra?: { runId?: unknown } };
    expect(manifest.extra?.runId).toBe(id);
    expect(manifest.epoch).toBeTypeOf('number');
    expect(detail.model?.tfjsExport?.files.map((f) => f.name)).toContain('model.json');
    const modelJson = await fetch(
      `${coordinator.url}${detail.model?.tfjsExport?.files.find((f) => f.name === 'model.json')?.url}`,
      {
        headers: { authorization: `Bearer ${TOKEN}` },
      },
    );
    expect(modelJson.status).toBe(200);
    expect(((await modelJson.json()) as { modelTopology?: unknown }).modelTopology).toBeDefined();

    const runs = await mlflowRuns(mlflow, `e2e-${keyPrefix}`, id);
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    expect(run.info.status).toBe('FINISHED');
    expect(run.info.runId).toBe(detail.tracking?.runId);
    for (const m of SEED_METRICS) {
      const train = await mlflow.getMetricHistory(run.info.runId, `train_${m}`);
      expect(
        train.map((p) => p.step),
        `train_${m}`,
      ).toEqual([0, 1, 2]);
    }
    const history = await client.metrics(id);
    expect(history.metrics.train_avg_loss?.map((p) => p.step)).toEqual([0, 1, 2]);
    expect(history.metrics.test_mean_iou).toHaveLength(1);
  });

  it('queues experiments while the workers are busy; each starts, by priority, when enough workers are free', async () => {
    const experimentName = `e2e-${keyPrefix}`;
    const submit = (name: string, workers: number, priority: number, epochs: number) =>
      client.submit(
        tinySpec({ workers, max_epochs: epochs, 'experiment-name': experimentName, 'run-name': name }),
        { priority },
      );
    const a = await submit('A', 2, 50, 2);
    await waitFor('A admitted', async () => ((await client.get(a.id)).startedAt ? true : undefined));
    const b = await submit('B', 1, 10, 1);
    const c = await submit('C', 1, 90, 1);
    const d = await submit('D', 1, 90, 1);
    const runs = { A: a.id, B: b.id, C: c.id, D: d.id };
    const spans = await Promise.all(
      Object.entries(runs).map(async ([name, id]) => {
        const times: { running?: number; finished: number[] } = { finished: [] };
        const end = await client.follow(id, (m) => {
          if (m.kind !== 'event') return;
          const at = Number(m.id.split('-')[0]);
          if (m.event.type === 'status' && m.event.status === 'running') times.running ??= at;
          if (m.event.type === 'finished') times.finished.push(at);
        });
        const detail = await client.get(id);
        return {
          name,
          status: end.status,
          workers: detail.workers,
          startedAt: Date.parse(detail.startedAt!),
          ...times,
        };
      }),
    );
    expect(spans.map((s) => s.status)).toEqual(['finished', 'finished', 'finished', 'finished']);
    // Admission order: A, then the two of priority 90 in submission order, then B.
    const admitted = [...spans].sort((x, y) => x.startedAt - y.startedAt).map((s) => s.name);
    expect(admitted).toEqual(['A', 'C', 'D', 'B']);
    // Never more workers training at once than there are (2): from 'running' to the last rank's 'finished'.
    for (const s of spans) {
      const busy = spans
        .filter((o) => o.running! <= s.running! && Math.max(...o.finished) >= s.running!)
        .reduce((n, o) => n + o.workers, 0);
      expect(busy, `workers busy when ${s.name} started`).toBeLessThanOrEqual(2);
    }
  });

  it('survives kill -9 of the coordinator mid-run: the run completes exactly once', async () => {
    const experimentName = `e2e-${keyPrefix}`;
    // Long enough that the coordinator is killed while the workers train (after epoch 1 of 20). The assertions hold
    // however the run and the adoption interleave, so they hold on a loaded machine too: what is checked is the
    // outcome, and that the adoption did not wait for BullMQ's lock to lapse (60 s) and its stalled checks (30 s).
    const spec = tinySpec({
      'unet-width': 6,
      max_epochs: 20,
      'test-epochs': 5,
      'experiment-name': experimentName,
      'run-name': 'crash',
    });
    const { id } = await client.submit(spec);
    await waitFor('epoch 2 under way', async () => {
      const d = await client.get(id);
      return d.progress && d.progress.epoch >= 1 ? d : undefined;
    });
    const stream = new Redis(redisUrl as string, { maxRetriesPerRequest: null });
    try {
      await coordinator.kill('SIGKILL');
      // The workers train on without a coordinator: their next step reaches the stream while none is up.
      await waitForRunEvent(
        stream,
        id,
        await lastRunEventId(stream, id),
        'a progress event while no coordinator is up',
        (e) => e.type === 'progress',
      );
    } finally {
      stream.disconnect();
    }
    await coordinator.restart();
    const restartedAt = Date.now();

    const events: RunEvent[] = [];
    const end = await client.follow(id, (m) => {
      if (m.kind === 'event') events.push(m.event);
    });
    // Finished once: one preparation, one start, one end, and no restart.
    expect(end.status).toBe('finished');
    expect(end.restarts).toBe(0);
    const statuses = events.flatMap((e) => (e.type === 'status' ? [e.status] : []));
    expect(statuses).toEqual(['queued', 'preparing', 'running', 'finished']);
    // No second generation: each rank started once, in generation 1, and every step came from generation 1.
    const started = events.flatMap((e) => (e.type === 'started' ? [e] : []));
    expect(started.map((e) => [e.rank, e.generation]).sort()).toEqual([
      [0, 1],
      [1, 1],
    ]);
    const progress = events.flatMap((e) => (e.type === 'progress' ? [e] : []));
    expect(new Set(progress.map((e) => e.generation))).toEqual(new Set([1]));
    const epochsTrained = progress.flatMap((e) => (e.rank === 0 && e.step === 0 ? [e.epoch] : []));
    expect(epochsTrained).toEqual([...Array(20).keys()]);
    // The restarted coordinator took the run over from its stream instead of starting it again.
    const adoption = readFileSync(join(logsDir, 'coordinator-2.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('adopting run'));
    expect(adoption).toHaveLength(1);
    // Within seconds of its start: the dead coordinator's beat lapses 5 s after the kill, the next sweep moves its job.
    const adoptedAfterMs = (JSON.parse(adoption[0] as string) as { time: number }).time - restartedAt;
    process.stdout.write(
      `kill -9: the restarted coordinator adopted the run ${adoptedAfterMs} ms after its start\n`,
    );
    expect(adoptedAfterMs).toBeLessThan(20_000);
    expect((await client.get(id)).status).toBe('finished');

    // Metrics neither lost nor duplicated, whichever coordinator delivered them: every step exactly once.
    const runs = await mlflowRuns(mlflow, experimentName, id);
    expect(runs.map((r) => r.info.runName)).toEqual(['crash']);
    const run = runs[0]!;
    expect(run.info.status).toBe('FINISHED');
    for (const m of SEED_METRICS) {
      const train = await mlflow.getMetricHistory(run.info.runId, `train_${m}`);
      expect(
        train.map((p) => p.step),
        `train_${m}`,
      ).toEqual([...Array(20).keys()]);
      const val = await mlflow.getMetricHistory(run.info.runId, `val_${m}`);
      expect(
        val.map((p) => p.step),
        `val_${m}`,
      ).toEqual([4, 9, 14, 19]);
      const test = await mlflow.getMetricHistory(run.info.runId, `test_${m}`);
      expect(test, `test_${m}`).toHaveLength(1);
    }
    const history = await client.metrics(id);
    expect(history.metrics.train_avg_loss?.map((p) => p.step)).toEqual([...Array(20).keys()]);
  }, 300_000);

  it('stops gracefully on SIGTERM: the running experiment goes back to the queue and the next coordinator finishes it', async () => {
    const experimentName = `e2e-${keyPrefix}`;
    const { id } = await client.submit(
      tinySpec({
        max_epochs: 12,
        'test-epochs': 4,
        'experiment-name': experimentName,
        'run-name': 'sigterm',
      }),
    );
    await waitFor('epoch 2 under way', async () => {
      const d = await client.get(id);
      return d.progress && d.progress.epoch >= 1 ? d : undefined;
    });
    const child = coordinator.child!;
    const stopping = Date.now();
    await coordinator.kill('SIGTERM');
    const log = readFileSync(join(logsDir, `coordinator-${coordinator.starts}.log`), 'utf8');
    // On failure, show why the process ended (its log is in a temp folder that is removed).
    expect(child.exitCode, log.split('\n').slice(-30).join('\n')).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(20_000);
    expect(log).toContain('handed back to the queue');
    for (let n = 1; n <= coordinator.starts; n++)
      expect(readFileSync(join(logsDir, `coordinator-${n}.log`), 'utf8')).not.toContain(
        'unhandled rejection',
      );
    await coordinator.restart();
    const end = await client.follow(id, () => undefined);
    expect(end).toMatchObject({ status: 'finished', restarts: 0 });
    const runs = await mlflowRuns(mlflow, experimentName, id);
    expect(runs.map((r) => r.info.status)).toEqual(['FINISHED']);
    const train = await mlflow.getMetricHistory(runs[0]!.info.runId, 'train_avg_loss');
    expect(train.map((p) => p.step)).toEqual([...Array(12).keys()]);
  });

  it('shows the dashboard in Chromium: live curves of a running experiment, workers, and cancel', async () => {
    const experimentName = `e2e-${keyPrefix}`;
    const { id } = await client.submit(
      tinySpec({
        max_epochs: 40,
        'test-epochs': 2,
        'experiment-name': experimentName,
        'run-name': 'dashboard',
      }),
    );
    const browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-dev-shm-usage',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      await page.addInitScript((token) => {
        const storage = (globalThis as unknown as { localStorage: { setItem(k: string, v: string): void } })
          .localStorage;
        storage.setItem('lits-token', token);
      }, TOKEN);
      await page.goto(`${coordinator.url}/#${id}`);
      await page.waitForSelector(`#experiments tr[data-id="${id}"]`, { timeout: 30_000 });
      await page.waitForFunction(
        () => {
          const d = (
            globalThis as unknown as { litsDashboard: { lossPoints(): number; iouPoints(): number } }
          ).litsDashboard;
          return d.lossPoints() >= 4 && d.iouPoints() >= 2;
        },
        undefined,
        { timeout: 180_000, polling: 500 },
      );
      await page.waitForSelector('#workers tbody tr:nth-child(2)');
      const workerRows = await page.locator('#workers tbody tr').allInnerTexts();
      expect(workerRows.join('\n')).toMatch(/w0[\s\S]*cpu[\s\S]*busy[\s\S]*\d+\.\d s/);
      expect(await page.locator('#loss-chart canvas').count()).toBeGreaterThan(0);
      expect(await page.locator('#iou-chart canvas').count()).toBeGreaterThan(0);
      const shot = fileURLToPath(new URL('../test-results/dashboard.png', import.meta.url));
      mkdirSync(dirname(shot), { recursive: true });
      await page.screenshot({ path: shot, fullPage: true });

      await page.click(`button[data-cancel="${id}"]`);
      await page.waitForSelector(`#experiments tr[data-id="${id}"] .status.cancelled`, { timeout: 60_000 });
      // The list and the run's own panel update from different requests: wait for the panel too (it once lagged
      // behind the list in a full-suite run).
      await page.waitForSelector('#run-status:text-is("cancelled")', { timeout: 60_000 });
      expect(await page.locator('#run-status').innerText()).toBe('cancelled');
    } finally {
      await browser.close();
    }
    const detail = await client.get(id);
    expect(detail.status).toBe('cancelled');
    const runs = await mlflowRuns(mlflow, experimentName, id);
    expect(runs.map((r) => r.info.status)).toEqual(['KILLED']);
    // The workers are free again.
    await waitFor('idle workers', async () => {
      const { workers: list } = await client.workers();
      return list.filter((w) => w.state === 'idle' && !w.leasedTo).length === 2 ? true : undefined;
    });
  });
});
