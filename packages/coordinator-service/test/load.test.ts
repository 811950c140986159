import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { buildApp, type CoordinatorApp } from '../src/index.js';
import { createLogger } from '../src/server/logger.js';

process.env.LITS_KEY_PREFIX = `load-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');
const TOKEN = 'load-test-token-0123456789';

describe.skipIf(!redisUrl)('200 concurrent submissions over HTTP', () => {
  let base: string;
  let app: CoordinatorApp;
  let url: string;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'coord-load-'));
    await mkdir(join(base, 'data', 'ds'), { recursive: true });
    app = await buildApp({
      redisUrl: redisUrl as string,
      tokens: [TOKEN],
      dataRoot: join(base, 'data'),
      home: join(base, 'home'),
      logger: createLogger('warn'),
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app?.close();
    await rm(base, { recursive: true, force: true });
  });

  it('with 20 repeated idempotency keys leave exactly 180 distinct experiments queued', async () => {
    const keys = Array.from({ length: 180 }, (_, i) => `load-key-${i}`);
    // The 20 repeats are spread through the burst, so each races its original.
    const order = [...keys];
    for (let i = 0; i < 20; i++) order.splice(i * 9 + 5, 0, keys[i] as string);
    expect(order).toHaveLength(200);
    const responses = await Promise.all(
      order.map(async (key) => {
        const res = await fetch(`${url}/v1/experiments`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${TOKEN}`,
            'content-type': 'application/json',
            'idempotency-key': key,
          },
          body: JSON.stringify({
            'dataset-path': 'ds',
            gpus: 1,
            max_epochs: 1,
            'test-epochs': 1,
            'run-name': key,
          }),
        });
        return {
          key,
          status: res.status,
          replayed: res.headers.get('idempotent-replayed'),
          body: (await res.json()) as { id: string },
        };
      }),
    );
    expect(responses.filter((r) => r.status !== 202)).toEqual([]);
    const idOfKey = new Map<string, string>();
    for (const r of responses) {
      const known = idOfKey.get(r.key);
      if (known) expect(r.body.id, r.key).toBe(known);
      else idOfKey.set(r.key, r.body.id);
    }
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(180);
    expect(responses.filter((r) => r.replayed === 'true')).toHaveLength(20);

    const listed = await fetch(`${url}/v1/experiments?status=queued&limit=1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(((await listed.json()) as { total: number }).total).toBe(180);
    // Their jobs come with the queue feeder's drain once the burst settles: this waits for it.
    await app.ctx.feeder.drain();
    const counts = await app.ctx.queue.counts();
    expect((counts.waiting ?? 0) + (counts.prioritized ?? 0)).toBe(180);
  });
});
