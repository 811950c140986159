import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { RedisServer } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { experimentKeys, runKeys } from '@lits-ddp/protocol';
import { buildApp, createLogger, type AppOptions, type CoordinatorApp } from '../src/index.js';

process.env.LITS_KEY_PREFIX = `apierr-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');
const trackingUri = serviceUrl('mlflow');
const TOKEN = 'api-errors-token-0123456789';
const SECOND_TOKEN = 'second-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const spec = { 'dataset-path': 'ds', gpus: 1, 'test-epochs': 1, max_epochs: 2 };

type Method = 'GET' | 'POST' | 'DELETE';
const waitUntil = async (what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100)))
    if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
};

describe.skipIf(!redisUrl || !trackingUri)(
  'REST API errors at the inject level (real Redis, real MLflow)',
  () => {
    let base: string;
    let app: CoordinatorApp;
    let options: AppOptions;
    /** A finished experiment with a model file, so every :id route has something real to answer. */
    let id: string;

    beforeAll(async () => {
      base = await mkdtemp(join(tmpdir(), 'coord-api-errors-'));
      await mkdir(join(base, 'data', 'ds'), { recursive: true });
      options = {
        redisUrl: redisUrl as string,
        tokens: [TOKEN, SECOND_TOKEN],
        dataRoot: join(base, 'data'),
        home: join(base, 'home'),
        trackingUri: trackingUri as string,
        logger: pino({ level: 'silent' }),
      };
      app = await buildApp(options);
      const created = await app.inject({
        method: 'POST',
        url: '/v1/experiments',
        headers: auth,
        payload: spec,
      });
      id = created.json().id as string;
      const modelDir = join(base, 'home', 'runs', id, 'model');
      await mkdir(modelDir, { recursive: true });
      await writeFile(join(modelDir, 'model.json'), '{}');
      await app.ctx.store.update(id, {
        status: 'finished',
        done: true,
        modelPath: join(modelDir, 'model.json'),
      });
    });
    afterAll(async () => {
      await app?.close();
      await rm(base, { recursive: true, force: true });
    });

    it('answers 401 without a token and with a wrong one on every secured route of the OpenAPI document', async () => {
      const doc = (await app.inject('/docs/json')).json() as {
        paths: Record<string, Record<string, { security?: unknown[] }>>;
      };
      const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.entries(ops).map(([method, op]) => ({
          method: method.toUpperCase() as Method,
          path,
          secured: (op.security ?? []).length > 0,
        })),
      );
      const secured = operations.filter((o) => o.secured).map((o) => `${o.method} ${o.path}`);
      expect(secured.sort()).toEqual([
        'DELETE /v1/experiments/{id}',
        'GET /metrics',
        'GET /v1/experiments',
        'GET /v1/experiments/{id}',
        'GET /v1/experiments/{id}/events',
        'GET /v1/experiments/{id}/metrics',
        'GET /v1/experiments/{id}/model/{file}',
        'GET /v1/workers',
        'POST /v1/experiments',
      ]);
      // Everything else is open, and nothing under /v1 or /metrics is.
      const open = operations.filter((o) => !o.secured).map((o) => `${o.method} ${o.path}`);
      expect(open.sort()).toEqual(['GET /healthz', 'GET /readyz']);

      const sent = new Map<string, { method: Method; url: string; payload?: object }>();
      for (const o of operations.filter((op) => op.secured)) {
        const url = o.path.replace('{id}', id).replace('{file}', 'model.json');
        sent.set(`${o.method} ${o.path}`, {
          method: o.method,
          url,
          ...(o.method === 'POST' ? { payload: spec } : {}),
        });
      }
      for (const [name, req] of sent) {
        const none = await app.inject(req);
        expect(none.statusCode, name).toBe(401);
        expect(none.json(), name).toMatchObject({
          statusCode: 401,
          message: expect.stringMatching(/missing authorization/),
        });
        for (const header of ['Bearer not-a-token-at-all', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, 'Bearer ']) {
          const wrong = await app.inject({ ...req, headers: { authorization: header } });
          expect(wrong.statusCode, `${name} with ${header}`).toBe(401);
          expect(wrong.json().error, name).toBe('Unauthorized');
        }
        // Both configured tokens pass (the experiment is finished: its event stream ends, DELETE is 409).
        for (const token of [TOKEN, SECOND_TOKEN]) {
          const ok = await app.inject({ ...req, headers: { authorization: `Bearer ${token}` } });
          expect(ok.statusCode, name).not.toBe(401);
          expect(ok.statusCode, name).toBeLessThan(500);
        }
      }
      for (const url of ['/healthz', '/readyz', '/docs', '/docs/json', '/', '/dashboard/app.js'])
        expect((await app.inject(url)).statusCode, url).toBe(200);
    });

    it('answers 429 from the rate limit on the write route as on the reads, per token; /healthz is never limited', async () => {
      const limited = await buildApp({ ...options, rateLimit: { max: 3, timeWindowMs: 60_000 } });
      try {
        const posts: number[] = [];
        for (let i = 0; i < 4; i++)
          posts.push(
            (
              await limited.inject({
                method: 'POST',
                url: '/v1/experiments',
                headers: auth,
                payload: { ...spec, 'run-name': `limited-${i}` },
              })
            ).statusCode,
          );
        expect(posts).toEqual([202, 202, 202, 429]);
        const over = await limited.inject({
          method: 'POST',
          url: '/v1/experiments',
          headers: auth,
          payload: spec,
        });
        expect(over.statusCode).toBe(429);
        expect(over.json()).toMatchObject({ statusCode: 429, message: expect.stringMatching(/rate limit/i) });
        expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
        // One bucket per token across routes: reads of this token are limited too, another token's are not.
        expect((await limited.inject({ url: '/v1/experiments', headers: auth })).statusCode).toBe(429);
        const other = { authorization: `Bearer ${SECOND_TOKEN}` };
        expect((await limited.inject({ url: '/v1/experiments', headers: other })).statusCode).toBe(200);
        for (let i = 0; i < 5; i++) expect((await limited.inject('/healthz')).statusCode).toBe(200);
      } finally {
        await limited.close();
      }
    });

    it('answers 503 from /readyz naming MLflow, or Redis, when it is unreachable, and is ready again once Redis is back', async () => {
      const noMlflow = await buildApp({ ...options, trackingUri: 'http://127.0.0.1:9' });
      try {
        const ready = await noMlflow.inject('/readyz');
        expect(ready.statusCode).toBe(503);
        expect(ready.json()).toMatchObject({
          status: 'not ready',
          message: expect.stringMatching(/^MLflow is unreachable/),
          checks: { redis: 'ok' },
        });
      } finally {
        await noMlflow.close();
      }

      const ownRedis = await RedisServer.start();
      const app2 = await buildApp({ ...options, redisUrl: ownRedis.url });
      try {
        expect((await app2.inject('/readyz')).json()).toMatchObject({
          status: 'ready',
          checks: { redis: 'ok' },
        });
        await ownRedis.stop();
        const down = await app2.inject('/readyz');
        expect(down.statusCode).toBe(503);
        expect(down.json()).toMatchObject({
          status: 'not ready',
          message: expect.stringMatching(/^Redis is unreachable \(.+\)$/),
          checks: { mlflow: 'ok' },
        });
        expect(down.json().checks.redis).not.toBe('ok');
        // The API says the same rather than a 500, and the process keeps serving.
        const list = await app2.inject({ url: '/v1/experiments', headers: auth });
        expect(list.statusCode).toBe(503);
        expect(list.json().message).toMatch(/Redis is unreachable/);
        expect((await app2.inject('/healthz')).statusCode).toBe(200);
        await ownRedis.start();
        await waitUntil(
          'readiness after Redis restarted',
          async () => (await app2.inject('/readyz')).statusCode === 200,
        );
      } finally {
        await app2.close();
        await ownRedis.dispose();
      }
    });

    it('answers 400 naming the Idempotency-Key header when it is empty or too long', async () => {
      for (const key of ['', 'k'.repeat(256)]) {
        const r = await app.inject({
          method: 'POST',
          url: '/v1/experiments',
          headers: { ...auth, 'idempotency-key': key },
          payload: spec,
        });
        expect(r.statusCode, `key of ${key.length}`).toBe(400);
        expect(r.json().errors).toEqual([
          { path: '/idempotency-key', message: `headers: must be 1 to 255 characters, got ${key.length}` },
        ]);
      }
      const longest = await app.inject({
        method: 'POST',
        url: '/v1/experiments',
        headers: { ...auth, 'idempotency-key': 'k'.repeat(255) },
        payload: spec,
      });
      expect(longest.statusCode).toBe(202);
    });

    it('serves an experiment under the longest client id on every :id route', async () => {
      const longest = `a${'b'.repeat(127)}`;
      const created = await app.inject({
        method: 'POST',
        url: '/v1/experiments',
        headers: auth,
        payload: { spec, id: longest },
      });
      expect(created.json()).toMatchObject({ id: longest, status: 'queued' });
      expect((await app.inject({ url: `/v1/experiments/${longest}`, headers: auth })).json().id).toBe(
        longest,
      );
      expect(
        (await app.inject({ url: `/v1/experiments/${longest}/metrics`, headers: auth })).statusCode,
      ).toBe(200);
      const cancel = await app.inject({ method: 'DELETE', url: `/v1/experiments/${longest}`, headers: auth });
      expect(cancel.json()).toEqual({ id: longest, status: 'cancelled' });
    });

    it('never answers a 5xx for bad input: each bad request gets its 4xx and a JSON reason', async () => {
      const nested = `${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`;
      // [what, method, url, body (a string is sent raw as JSON), status, field path of the first error?]
      const table: Array<[string, Method, string, unknown, number, string?]> = [
        ['null body', 'POST', '/v1/experiments', 'null', 400],
        ['empty JSON body', 'POST', '/v1/experiments', '', 400],
        ['no dataset-path', 'POST', '/v1/experiments', {}, 400, '/dataset-path'],
        ['dataset-path a number', 'POST', '/v1/experiments', { 'dataset-path': 5 }, 400, '/dataset-path'],
        ['lr a string', 'POST', '/v1/experiments', { ...spec, lr: 'NaN' }, 400, '/lr'],
        ['workers over 64', 'POST', '/v1/experiments', { ...spec, workers: 65 }, 400, '/workers'],
        ['gpus fractional', 'POST', '/v1/experiments', { ...spec, gpus: 1.5 }, 400, '/gpus'],
        ['max_epochs negative', 'POST', '/v1/experiments', { ...spec, max_epochs: -3 }, 400, '/max_epochs'],
        ['__proto__ key', 'POST', '/v1/experiments', `{"dataset-path":"ds","__proto__":{"x":1}}`, 400],
        ['constructor.prototype', 'POST', '/v1/experiments', `{"constructor":{"prototype":{"x":1}}}`, 400],
        ['deeply nested', 'POST', '/v1/experiments', nested, 400],
        ['spec null', 'POST', '/v1/experiments', { spec: null }, 400],
        ['priority a word', 'POST', '/v1/experiments', { spec, priority: 'high' }, 400, '/priority'],
        ['id with a colon', 'POST', '/v1/experiments', { spec, id: 'a:b' }, 400, '/id'],
        ['id all digits', 'POST', '/v1/experiments', { spec, id: '123' }, 400, '/id'],
        ['id of 200 characters', 'POST', '/v1/experiments', { spec, id: `x${'y'.repeat(199)}` }, 400, '/id'],
        ['limit a word', 'GET', '/v1/experiments?limit=abc', undefined, 400, '/limit'],
        ['limit huge', 'GET', '/v1/experiments?limit=1000000000', undefined, 400, '/limit'],
        ['offset fractional', 'GET', '/v1/experiments?offset=1.5', undefined, 400, '/offset'],
        ['status unknown', 'GET', '/v1/experiments?status=done', undefined, 400, '/status'],
        ['limit twice', 'GET', '/v1/experiments?limit=1&limit=2', undefined, 400, '/limit'],
        ['id of 200 characters', 'GET', `/v1/experiments/${'x'.repeat(200)}`, undefined, 400, '/id'],
        ['unknown id', 'GET', '/v1/experiments/exp-none', undefined, 404],
        ['NUL in the id', 'GET', '/v1/experiments/a%00b', undefined, 404],
        ['broken percent-encoding', 'GET', '/v1/experiments/%E0%A4%A', undefined, 400],
        ['DELETE a 200-character id', 'DELETE', `/v1/experiments/${'x'.repeat(200)}`, undefined, 400, '/id'],
        [
          'metrics of a 200-character id',
          'GET',
          `/v1/experiments/${'x'.repeat(200)}/metrics`,
          undefined,
          400,
          '/id',
        ],
        ['lastEventId not a stream id', 'GET', '/v1/experiments/{id}/events?lastEventId=abc', undefined, 400],
        [
          'model file name of 200 characters',
          'GET',
          `/v1/experiments/{id}/model/${'f'.repeat(200)}`,
          undefined,
          404,
        ],
        [
          'path part over 256 characters',
          'GET',
          `/v1/experiments/{id}/model/${'f'.repeat(300)}`,
          undefined,
          414,
        ],
        [
          'model file outside the export',
          'GET',
          '/v1/experiments/{id}/model/..%2F..%2Fspec.json',
          undefined,
          404,
        ],
      ];
      const total = async (): Promise<number> =>
        (await app.inject({ url: '/v1/experiments', headers: auth })).json().total as number;
      const before = await total();
      for (const [what, method, rawUrl, body, status, path] of table) {
        const url = rawUrl.replace('{id}', id);
        const r = await app.inject({
          method,
          url,
          headers: { ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
        });
        expect(r.statusCode, what).toBe(status);
        const reply = r.json() as { statusCode: number; message: string; errors?: Array<{ path: string }> };
        expect(reply.statusCode, what).toBe(status);
        expect(reply.message.length, what).toBeGreaterThan(0);
        if (path) expect(reply.errors?.[0]?.path, what).toBe(path);
      }
      // Headers and content types: the same promise.
      const headerCases: Array<[string, Record<string, string>, string, number]> = [
        ['plain text body', { 'content-type': 'text/plain' }, 'hello', 415],
        ['XML body', { 'content-type': 'application/xml' }, '<spec/>', 415],
        ['Last-Event-ID of 1000 characters', { 'last-event-id': 'x'.repeat(1000) }, '', 400],
      ];
      for (const [what, headers, payload, status] of headerCases) {
        const r = await app.inject({
          method: payload ? 'POST' : 'GET',
          url: payload ? '/v1/experiments' : `/v1/experiments/${id}/events`,
          headers: { ...auth, ...headers },
          ...(payload ? { payload } : {}),
        });
        expect(r.statusCode, what).toBe(status);
        expect(r.json().message, what).toBeTypeOf('string');
      }
      // Nothing was queued by any of it.
      expect(await total()).toBe(before);
    });

    it('answers 500, not 503, for an error that mentions "connect" while Redis is up; a corrupt record names its key', async () => {
      const lines: string[] = [];
      const logged = await buildApp({
        ...options,
        logger: createLogger(
          'info',
          new Writable({
            write(chunk: Buffer, _enc, done) {
              lines.push(chunk.toString());
              done();
            },
          }),
        ),
      });
      // The record's key holds the id, so the decode error's message says "connect": still a 500.
      const corrupt = `cannot-connect-${randomBytes(3).toString('hex')}`;
      const planned = `planned-${randomBytes(3).toString('hex')}`;
      let stored: string | undefined;
      try {
        for (const own of [corrupt, planned])
          expect(
            (
              await logged.inject({
                method: 'POST',
                url: '/v1/experiments',
                headers: auth,
                payload: { spec, id: own },
              })
            ).statusCode,
          ).toBe(202);
        stored = (await logged.ctx.redis.hget(experimentKeys.record(corrupt), 'spec')) ?? undefined;
        await logged.ctx.redis.hset(experimentKeys.record(corrupt), 'spec', '{"dataset-path": "ds"');
        await logged.ctx.store.update(planned, { status: 'running' });
        await logged.ctx.redis.set(runKeys.plan(planned), JSON.stringify({ ranks: [0, 1] }));

        const requests: Array<[string, string]> = [
          [`/v1/experiments/${corrupt}`, `experiment record ${experimentKeys.record(corrupt)} field spec`],
          [`/v1/experiments/${corrupt}/metrics`, experimentKeys.record(corrupt)],
          ['/v1/experiments', experimentKeys.record(corrupt)],
          [`/v1/experiments/${planned}`, `run plan ${runKeys.plan(planned)}: field /ranks/0`],
        ];
        for (const [url, named] of requests) {
          const r = await logged.inject({ url, headers: auth });
          expect(r.statusCode, url).toBe(500);
          expect(r.json(), url).toEqual({
            statusCode: 500,
            error: 'Internal Server Error',
            message: `internal error (request ${r.headers['x-request-id']})`,
          });
          const failure = lines
            .map((l) => JSON.parse(l) as { reqId?: string; msg: string; err?: { message: string } })
            .find((l) => l.reqId === r.headers['x-request-id'] && l.msg === 'request failed');
          expect(failure?.err?.message, url).toContain(named);
        }
        // Redis is up all along.
        expect((await logged.inject('/readyz')).statusCode).toBe(200);
        await logged.ctx.redis.hset(experimentKeys.record(corrupt), 'spec', stored as string);
        stored = undefined;
        expect((await logged.inject({ url: `/v1/experiments/${corrupt}`, headers: auth })).statusCode).toBe(
          200,
        );
      } finally {
        if (stored) await logged.ctx.redis.hset(experimentKeys.record(corrupt), 'spec', stored);
        await logged.ctx.redis.del(runKeys.plan(planned));
        await logged.close();
      }
    });
  },
);
