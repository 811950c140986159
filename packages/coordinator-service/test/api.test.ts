import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { collectSystemInfo, WorkerAgent } from '@lits-ddp/trainer';
import { runKeys } from '@lits-ddp/protocol';
import { publishEvent } from '@lits-ddp/orchestrator';
import { buildApp, type AppOptions, type CoordinatorApp } from '../src/index.js';
import { createLogger } from '../src/server/logger.js';

process.env.LITS_KEY_PREFIX = `api-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');
const trackingUri = serviceUrl('mlflow');
const TOKEN = 'api-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

describe.skipIf(!redisUrl || !trackingUri)('REST API at the inject level (real Redis, real MLflow)', () => {
  let base: string;
  let app: CoordinatorApp;
  let options: AppOptions;
  const logLines: string[] = [];

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'coord-api-'));
    await mkdir(join(base, 'data', 'ds'), { recursive: true });
    await mkdir(join(base, 'outside'), { recursive: true });
    await symlink(join(base, 'outside'), join(base, 'data', 'escape'));
    options = {
      redisUrl: redisUrl as string,
      tokens: [TOKEN, 'second-token-0123456789'],
      dataRoot: join(base, 'data'),
      home: join(base, 'home'),
      trackingUri: trackingUri as string,
      logger: createLogger(
        'info',
        new Writable({
          write(chunk: Buffer, _enc, done) {
            logLines.push(chunk.toString());
            done();
          },
        }),
      ),
    };
    app = await buildApp(options);
  });
  afterAll(async () => {
    await app?.close();
    await rm(base, { recursive: true, force: true });
  });

  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: { ...auth, ...headers },
      payload: payload as object,
    });
  const spec = (extra: Record<string, unknown> = {}) => ({
    'dataset-path': 'ds',
    gpus: 1,
    'test-epochs': 1,
    max_epochs: 2,
    ...extra,
  });

  it('keeps /healthz, /readyz, the docs and the dashboard open (401s: api-errors.test.ts)', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toEqual({ redis: 'ok', mlflow: 'ok' });
    expect((await app.inject('/docs/json')).json().paths).toHaveProperty('/v1/experiments/{id}/events');
    expect((await app.inject('/docs')).statusCode).toBeLessThan(400);
    expect((await app.inject('/')).body).toContain('<title>lits-ddp coordinator</title>');
  });

  it('answers 400 with field paths for a bad spec, in both body forms, never 5xx', async () => {
    const bare = await post({ lr: -1, 'dataset-path': 'ds', colour: 'red' });
    expect(bare.statusCode).toBe(400);
    expect(bare.json().errors).toEqual([
      { path: '/colour', message: 'unknown field' },
      { path: '/lr', message: 'must be > 0' },
    ]);
    const envelope = await post({ spec: { workers: 3, 'dataset-path': 'ds' }, priority: 101, id: '123' });
    expect(envelope.statusCode).toBe(400);
    const paths = envelope.json().errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(['/id', '/priority', '/spec/workers']);
    for (const body of ['[1,2]', '"text"', '{"spec": 5, "lr": "x"}']) {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/experiments',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: body,
      });
      expect(r.statusCode, body).toBe(400);
    }
    const broken = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"lr": ',
    });
    expect(broken.statusCode).toBe(400);
    for (const [q, path] of [
      ['limit=0', '/limit'],
      ['status=nope', '/status'],
      ['offset=-1', '/offset'],
    ]) {
      const query = await app.inject({ url: `/v1/experiments?${q}`, headers: auth });
      expect(query.statusCode, q).toBe(400);
      expect(query.json().errors.map((e: { path: string }) => e.path)).toEqual([path]);
    }
  });

  it('resolves dataset-path only inside the data root: no .., no absolute escape, no symlink escape', async () => {
    const cases: Array<[string, RegExp]> = [
      ['../outside', /'\.\.' segments/],
      ['ds/../../outside', /'\.\.' segments/],
      [join(base, 'outside'), /inside the data root/],
      ['escape', /symbolic link/],
      ['missing', /does not exist/],
    ];
    for (const [path, message] of cases) {
      const r = await post(spec({ 'dataset-path': path }));
      expect(r.statusCode, path).toBe(400);
      expect(r.json().errors, path).toEqual([
        { path: '/dataset-path', message: expect.stringMatching(message) },
      ]);
    }
    const cache = await post({ spec: spec({ 'cache-path': '/etc/lits' }) });
    expect(cache.json().errors).toEqual([
      { path: '/spec/cache-path', message: expect.stringMatching(/coordinator home/) },
    ]);
    const ok = await post(spec({ 'dataset-path': join(base, 'data', 'ds') }));
    expect(ok.statusCode).toBe(202);
    const detail = await app.inject({ url: `/v1/experiments/${ok.json().id}`, headers: auth });
    expect(detail.json().spec['dataset-path']).toBe(join(base, 'data', 'ds'));
  });

  it('answers 413 for an oversized body', async () => {
    const r = await post({ 'dataset-path': 'ds', 'run-name': 'x'.repeat(300 * 1024) });
    expect(r.statusCode).toBe(413);
  });

  it('queues once per Idempotency-Key or client id, also after the job is gone; 409 on a different body', async () => {
    const key = `key-${randomBytes(4).toString('hex')}`;
    const first = await post(spec(), { 'idempotency-key': key });
    expect(first.statusCode).toBe(202);
    const { id } = first.json();
    expect(first.json().links.events).toBe(`/v1/experiments/${id}/events`);
    const again = await post(spec(), { 'idempotency-key': key });
    expect(again.statusCode).toBe(202);
    expect(again.json().id).toBe(id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect((await post(spec({ lr: 0.5 }), { 'idempotency-key': key })).statusCode).toBe(409);
    // The job (added by the queue feeder) completes and is trimmed from BullMQ: the key still names the same experiment.
    await app.ctx.feeder.drain();
    expect(await app.ctx.queue.queue.getJob(id)).toBeDefined();
    await app.ctx.store.update(id, { status: 'finished', done: true });
    await app.ctx.queue.queue.remove(id);
    const later = await post(spec(), { 'idempotency-key': key });
    expect(later.json()).toMatchObject({ id, status: 'finished' });
    await app.ctx.feeder.drain();
    expect(await app.ctx.queue.queue.getJob(id)).toBeUndefined();
    // A record left queued without a job (its job lost, say) gets it again on a retry.
    const orphan = (await post(spec({ 'run-name': 'orphan' }), { 'idempotency-key': `${key}-orphan` })).json()
      .id;
    await app.ctx.feeder.drain();
    await app.ctx.queue.queue.remove(orphan);
    await post(spec({ 'run-name': 'orphan' }), { 'idempotency-key': `${key}-orphan` });
    await app.ctx.feeder.drain();
    expect(await app.ctx.queue.queue.getJob(orphan)).toBeDefined();

    const clientId = `mine-${randomBytes(3).toString('hex')}`;
    expect((await post({ spec: spec(), id: clientId, priority: 70 })).json()).toMatchObject({ id: clientId });
    expect((await post({ spec: spec(), id: clientId, priority: 70 })).json().id).toBe(clientId);
    expect((await post({ spec: spec({ max_epochs: 3 }), id: clientId, priority: 70 })).statusCode).toBe(409);
    await app.ctx.feeder.drain();
    const job = await app.ctx.queue.queue.getJob(clientId);
    expect(job?.opts.priority).toBe(31);
  });

  it('lists newest first, filtered by status and paginated; shows one experiment; 404 for an unknown one', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await post(spec({ 'run-name': `list-${i}` }))).json().id);
    const page = await app.inject({ url: '/v1/experiments?status=queued&limit=2&offset=0', headers: auth });
    expect(page.statusCode).toBe(200);
    expect(page.json().items.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    expect(page.json().total).toBeGreaterThanOrEqual(3);
    const next = await app.inject({ url: '/v1/experiments?status=queued&limit=2&offset=2', headers: auth });
    expect(next.json().items[0].id).toBe(ids[0]);
    const none = await app.inject({ url: '/v1/experiments?status=failed', headers: auth });
    expect(none.json().items).toEqual([]);
    const one = await app.inject({ url: `/v1/experiments/${ids[0]}`, headers: auth });
    expect(one.json()).toMatchObject({
      id: ids[0],
      status: 'queued',
      priority: 50,
      workers: 1,
      runName: 'list-0',
      restarts: 0,
      links: { self: `/v1/experiments/${ids[0]}` },
    });
    expect(one.json().spec.max_epochs).toBe(2);
    expect((await app.inject({ url: '/v1/experiments/nope', headers: auth })).statusCode).toBe(404);
    expect((await app.inject({ url: '/v1/experiments/nope/metrics', headers: auth })).statusCode).toBe(404);
    expect((await app.inject({ url: '/v1/experiments/nope/events', headers: auth })).statusCode).toBe(404);
    expect(
      (await app.inject({ method: 'DELETE', url: '/v1/experiments/nope', headers: auth })).statusCode,
    ).toBe(404);
    expect((await app.inject({ url: '/v2/nothing', headers: auth })).statusCode).toBe(404);
  });

  it('cancels: a queued experiment is removed (200), a running one gets the cancel key (202), a finished one 409', async () => {
    const queued = (await post(spec())).json().id as string;
    await app.ctx.feeder.drain();
    expect(await app.ctx.queue.queue.getJob(queued)).toBeDefined();
    const r = await app.inject({ method: 'DELETE', url: `/v1/experiments/${queued}`, headers: auth });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ id: queued, status: 'cancelled' });
    expect(await app.ctx.queue.queue.getJob(queued)).toBeUndefined();
    expect(
      (await app.inject({ method: 'DELETE', url: `/v1/experiments/${queued}`, headers: auth })).statusCode,
    ).toBe(409);

    const running = (await post(spec())).json().id as string;
    await app.ctx.store.update(running, { status: 'running' });
    const c = await app.inject({ method: 'DELETE', url: `/v1/experiments/${running}`, headers: auth });
    expect(c.statusCode).toBe(202);
    expect(c.json().status).toBe('cancelling');
    expect(await app.ctx.redis.get(runKeys.cancel(running))).toMatch(/cancelled/);
  });

  it('streams events over SSE with stream ids, resumes after Last-Event-ID, and ends with the summary', async () => {
    const id = (await post(spec())).json().id as string;
    await publishEvent(app.ctx.redis, id, { type: 'status', status: 'running', restarts: 0 });
    const metrics = { train_avg_loss: 0.5, train_iou_1: 0.25 };
    await publishEvent(app.ctx.redis, id, { type: 'metrics', generation: 1, epoch: 0, metrics });
    await app.ctx.store.update(id, { status: 'finished', done: true });
    const all = await app.inject({ url: `/v1/experiments/${id}/events`, headers: auth });
    expect(all.headers['content-type']).toMatch(/^text\/event-stream/);
    const blocks = all.body.split('\n\n').filter((b) => b.startsWith('id:') || b.startsWith('event:'));
    expect(blocks.map((b) => /event: (\w+)/.exec(b)?.[1])).toEqual(['status', 'status', 'metrics', 'end']);
    const ids = blocks.flatMap((b) => /^id: (\S+)/.exec(b)?.[1] ?? []);
    expect(ids).toHaveLength(3);
    const resumed = await app.inject({
      url: `/v1/experiments/${id}/events`,
      headers: { ...auth, 'last-event-id': ids[1]! },
    });
    expect(resumed.body).not.toContain(`id: ${ids[1]}`);
    expect(resumed.body).toContain(`id: ${ids[2]}`);
    expect(resumed.body).toContain('"train_avg_loss":0.5');
    expect(resumed.body).toMatch(/event: end\ndata: \{"id":"[^"]+","status":"finished"/);
    const query = await app.inject({
      url: `/v1/experiments/${id}/events?lastEventId=${ids[2]}`,
      headers: auth,
    });
    expect(query.body).not.toContain('event: metrics');
    const bad = await app.inject({
      url: `/v1/experiments/${id}/events`,
      headers: { ...auth, 'last-event-id': 'x' },
    });
    expect(bad.statusCode).toBe(400);

    await app.ctx.store.addMetricPoint(id, 'train_avg_loss', 0, 0.5);
    await app.ctx.store.addMetricPoint(id, 'train_avg_loss', 1, 0.25);
    await app.ctx.store.addMetricPoint(id, 'train_avg_loss', 1, 0.9); // a re-run epoch: first value stays
    const history = await app.inject({ url: `/v1/experiments/${id}/metrics`, headers: auth });
    expect(history.json()).toEqual({
      id,
      metrics: {
        train_avg_loss: [
          { step: 0, value: 0.5 },
          { step: 1, value: 0.25 },
        ],
      },
    });
  });

  it('links the checkpoint lits predict loads and the tfjs export, each by its own name, and serves the export', async () => {
    const id = (await post(spec())).json().id as string;
    const runDir = join(base, 'home', 'runs', id);
    const modelDir = join(runDir, 'model');
    await mkdir(modelDir, { recursive: true });
    await writeFile(join(modelDir, 'model.json'), '{"modelTopology":{}}');
    await writeFile(join(modelDir, 'weights.bin'), new Uint8Array([1, 2, 3, 4]));
    // Training left a `last` and a `final` checkpoint but no `best`: predict picks final.
    for (const kind of ['last', 'final']) {
      await mkdir(join(runDir, 'checkpoints', kind), { recursive: true });
      await writeFile(join(runDir, 'checkpoints', kind, 'checkpoint.json'), '{}');
    }
    await mkdir(join(runDir, 'checkpoints', 'best'), { recursive: true }); // no checkpoint.json: not a checkpoint
    await app.ctx.store.update(id, {
      status: 'finished',
      done: true,
      modelPath: join(modelDir, 'model.json'),
    });
    const detail = (await app.inject({ url: `/v1/experiments/${id}`, headers: auth })).json();
    expect(detail.model.checkpoint).toEqual({ path: join(runDir, 'checkpoints', 'final'), kind: 'final' });
    expect(detail.model.tfjsExport.path).toBe(modelDir);
    expect(detail.model.tfjsExport.files).toEqual([
      { name: 'model.json', bytes: 20, url: `/v1/experiments/${id}/model/model.json` },
      { name: 'weights.bin', bytes: 4, url: `/v1/experiments/${id}/model/weights.bin` },
    ]);
    expect(detail.links.tfjsExport).toBe(`/v1/experiments/${id}/model/model.json`);
    expect(detail.links).not.toHaveProperty('model');
    // Once best holds a checkpoint, it is the one linked (as `lits predict --model <run folder>` picks it).
    await writeFile(join(runDir, 'checkpoints', 'best', 'checkpoint.json'), '{}');
    const withBest = (await app.inject({ url: `/v1/experiments/${id}`, headers: auth })).json();
    expect(withBest.model.checkpoint).toEqual({ path: join(runDir, 'checkpoints', 'best'), kind: 'best' });
    const weights = await app.inject({ url: `/v1/experiments/${id}/model/weights.bin`, headers: auth });
    expect([...weights.rawPayload]).toEqual([1, 2, 3, 4]);
    expect(
      (await app.inject({ url: `/v1/experiments/${id}/model/..%2Fspec.json`, headers: auth })).statusCode,
    ).toBe(404);
    // The OpenAPI document says which is which.
    const schema = (await app.inject('/docs/json')).json().paths['/v1/experiments/{id}'].get.responses['200']
      .content['application/json'].schema.properties.model.properties;
    expect(schema.checkpoint.properties.path.description).toMatch(/lits predict --model/);
    expect(schema.tfjsExport.description).toMatch(/cannot load it/);

    // A running experiment already links its best checkpoint, before there is an export.
    const running = (await post(spec())).json().id as string;
    await app.ctx.store.update(running, { status: 'running' });
    const best = join(base, 'home', 'runs', running, 'checkpoints', 'best');
    await mkdir(best, { recursive: true });
    await writeFile(join(best, 'checkpoint.json'), '{}');
    const live = (await app.inject({ url: `/v1/experiments/${running}`, headers: auth })).json();
    expect(live.model).toEqual({ checkpoint: { path: best, kind: 'best' } });
  });

  it('lists workers with engine, device, state and heartbeat age, and exports Prometheus metrics', async () => {
    const agent = new WorkerAgent({
      redisUrl: redisUrl as string,
      workerId: 'api-worker-0',
      engine: 'node',
      engineThreads: { intraOp: 1, interOp: 1 },
      libtensorflow: '2.18.1',
      device: 'cpu',
      system: collectSystemInfo('4.22.0'),
      heartbeatIntervalS: 0.5,
    });
    await agent.start();
    try {
      const seen = async () => (await app.inject({ url: '/v1/workers', headers: auth })).json().workers;
      let workers = await seen();
      for (let i = 0; i < 40 && workers[0]?.heartbeatAgeMs === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
        workers = await seen();
      }
      expect(workers).toEqual([
        expect.objectContaining({
          id: 'api-worker-0',
          engine: 'node',
          engineThreads: { intraOp: 1, interOp: 1 },
          libtensorflow: '2.18.1',
          device: 'cpu',
          state: 'idle',
        }),
      ]);
      expect(workers[0].heartbeatAgeMs).toBeLessThan(5000);
      expect(Date.now() - Date.parse(workers[0].lastHeartbeatAt)).toBeLessThan(5000);
      app.ctx.metrics.observeStep({
        type: 'progress',
        generation: 1,
        rank: 0,
        epoch: 0,
        step: 0,
        stepsPerEpoch: 1,
        loss: 1,
        timings: { computeMs: 800, allReduceMs: 100, dataMs: 50, otherMs: 50 },
      });
      const text = (await app.inject({ url: '/metrics', headers: auth })).body;
      expect(text).toMatch(/lits_queue_jobs\{state="prioritized"\} \d+/);
      expect(text).toMatch(/^lits_queue_outbox \d+$/m);
      expect(text).toMatch(/lits_experiments\{status="queued"\} [1-9]/);
      expect(text).toContain('lits_workers{state="idle"} 1');
      expect(text).toContain('lits_step_seconds_count{part="total"} 1');
      expect(text).toMatch(
        /lits_http_request_seconds_count\{method="POST",route="\/v1\/experiments",status_code="202"\}/,
      );
    } finally {
      await agent.stop();
    }
  });

  it('logs with reqId and runId, and never the token', async () => {
    const r = await post(spec());
    app.log.info({ req: { headers: { authorization: `Bearer ${TOKEN}` } }, token: TOKEN }, 'probe');
    const lines = logLines.join('');
    expect(lines).not.toContain(TOKEN);
    expect(lines).toContain('[redacted]');
    const queued = logLines.map((l) => JSON.parse(l)).find((l) => l.runId === r.json().id);
    expect(queued).toMatchObject({ msg: 'experiment queued', reqId: r.headers['x-request-id'] });
  });
});
