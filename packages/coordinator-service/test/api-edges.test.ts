import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import {
  bullPrefix,
  buildApp,
  createLogger,
  QUEUE_NAME,
  type AppOptions,
  type CoordinatorApp,
} from '../src/index.js';

process.env.LITS_KEY_PREFIX = `apiedge-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');
const TOKEN = 'api-edges-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const spec = { 'dataset-path': 'ds', gpus: 1, 'test-epochs': 1, max_epochs: 2 };

/** The coordinator's edges (issue 18, findings 4–6): failed auth, secrets in URLs, 414/415, bodies, limits. */
describe.skipIf(!redisUrl)('REST API edges (real Fastify, real Redis)', () => {
  let base: string;
  let options: AppOptions;
  let app: CoordinatorApp;
  const lines: string[] = [];

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'coord-api-edges-'));
    await mkdir(join(base, 'data', 'ds'), { recursive: true });
    options = {
      redisUrl: redisUrl as string,
      tokens: [TOKEN],
      dataRoot: join(base, 'data'),
      home: join(base, 'home'),
      logger: createLogger(
        'info',
        new Writable({
          write(chunk: Buffer, _enc, done) {
            lines.push(chunk.toString());
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

  it('answers 429 to an address after its failed authentications, never to a client with a right token elsewhere', async () => {
    const limited = await buildApp({ ...options, authFailureLimit: { max: 5, windowMs: 60_000 } });
    try {
      const guesser = '10.0.0.7';
      const codes: number[] = [];
      for (let i = 0; i < 8; i++)
        codes.push(
          (
            await limited.inject({
              url: '/v1/experiments',
              remoteAddress: guesser,
              headers: { authorization: `Bearer guess-${i}` },
            })
          ).statusCode,
        );
      expect(codes).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
      // Even the right token is refused from that address now: the answer must not tell guesses apart.
      const blocked = await limited.inject({ url: '/v1/experiments', remoteAddress: guesser, headers: auth });
      expect(blocked.statusCode).toBe(429);
      expect(blocked.json()).toEqual({
        statusCode: 429,
        error: 'Too Many Requests',
        message: expect.stringMatching(/^too many failed authentications from this address; retry in \d+ s$/),
      });
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      // Another address with the right token is served, and keeps being served past the failure limit.
      for (let i = 0; i < 8; i++) {
        const ok = await limited.inject({ url: '/v1/experiments', remoteAddress: '10.0.0.8', headers: auth });
        expect(ok.statusCode).toBe(200);
      }
      // Open routes stay open for the blocked address.
      expect((await limited.inject({ url: '/healthz', remoteAddress: guesser })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('logs request URLs with secret query parameters redacted', async () => {
    const secret = `query-secret-${randomBytes(6).toString('hex')}`;
    const url = `/v1/experiments/exp-none/events?token=${secret}&access_token=${secret}&api_key=${secret}&lastEventId=0-0`;
    const r = await app.inject({ url, headers: auth });
    expect(r.statusCode).toBe(404);
    const logged = lines.join('');
    expect(logged).toContain(r.headers['x-request-id'] as string);
    expect(logged).not.toContain(secret);
    const incoming = lines
      .map((l) => JSON.parse(l) as { reqId?: string; req?: { url: string } })
      .find((l) => l.reqId === r.headers['x-request-id'] && l.req);
    expect(incoming?.req?.url).toBe(
      '/v1/experiments/exp-none/events?token=[redacted]&access_token=[redacted]&api_key=[redacted]&lastEventId=0-0',
    );
  });

  it('answers 414 "URI Too Long" in the error format, echoing only the start of the path', async () => {
    const path = `/v1/experiments/${'x'.repeat(5000)}`;
    const r = await app.inject({ url: path, headers: auth });
    expect(r.statusCode).toBe(414);
    const reply = r.json() as { statusCode: number; error: string; message: string };
    expect(reply).toEqual({ statusCode: 414, error: 'URI Too Long', message: expect.any(String) });
    expect(reply.message).toMatch(
      /^a path part is over 256 characters: \/v1\/experiments\/x+… \(5016 characters\)$/,
    );
    expect(r.body.length).toBeLessThan(300);
  });

  it('answers 415 to a text/plain body and 400 naming a forbidden key', async () => {
    const text = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: { ...auth, 'content-type': 'text/plain' },
      payload: JSON.stringify(spec),
    });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toMatchObject({ statusCode: 415, error: 'Unsupported Media Type' });
    const bodies: Array<[string, string]> = [
      ['{"dataset-path":"ds","__proto__":{"x":1}}', '"__proto__"'],
      ['{"dataset-path":"ds","\\u005f_proto__":{"x":1}}', '"__proto__"'],
      ['{"constructor":{"prototype":{"x":1}}}', '"constructor.prototype"'],
    ];
    for (const [payload, key] of bodies) {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/experiments',
        headers: { ...auth, 'content-type': 'application/json' },
        payload,
      });
      expect(r.statusCode, payload).toBe(400);
      expect(r.json(), payload).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: `Body has the forbidden key ${key}`,
      });
    }
    const broken = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"dataset-path":',
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().message).toMatch(/^Body is not valid JSON: /);
    // A word named like a forbidden key, as a value, is fine.
    const fine = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: { ...auth, 'content-type': 'application/json; charset=utf-8' },
      payload: JSON.stringify({ ...spec, 'run-name': 'constructor __proto__' }),
    });
    expect(fine.statusCode).toBe(202);
  });

  it('refuses counts no run can use (max_epochs 1e12) and accepts the largest allowed', async () => {
    const huge = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: auth,
      payload: { ...spec, max_epochs: 1e12 },
    });
    expect(huge.statusCode).toBe(400);
    expect(huge.json().errors[0].path).toBe('/max_epochs');
    const largest = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: auth,
      payload: { ...spec, max_epochs: 100_000, 'run-name': 'longest-run' },
    });
    expect(largest.statusCode).toBe(202);
  });

  it('answers 202 cancelling to DELETE of an experiment a processor has just taken, its record still queued', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: auth,
      payload: { spec, id: `picked-${randomBytes(3).toString('hex')}` },
    });
    const { id } = created.json() as { id: string };
    // Its job comes with the queue feeder's drain once the submission settles: this waits for it.
    await app.ctx.feeder.drain();
    const connection = new Redis(redisUrl as string, { maxRetriesPerRequest: null });
    // A bare BullMQ worker takes jobs by hand: the job becomes active, as when a processor picks it up.
    const taker = new Worker(QUEUE_NAME, null, { connection, prefix: bullPrefix() });
    try {
      let taken: string | undefined;
      while (taken !== id) {
        const job = await taker.getNextJob(`token-${id}`);
        if (!job) throw new Error(`job ${id} never came`);
        taken = job.id;
      }
      expect((await app.inject({ url: `/v1/experiments/${id}`, headers: auth })).json().status).toBe(
        'queued',
      );
      const cancel = await app.inject({ method: 'DELETE', url: `/v1/experiments/${id}`, headers: auth });
      expect(cancel.statusCode).toBe(202);
      expect(cancel.json()).toEqual({ id, status: 'cancelling' });
    } finally {
      await taker.close();
      await connection.quit();
    }
  });
});
