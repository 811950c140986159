import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { CoordinatorClient } from '@lits-ddp/coordinator-client';
import { appBin } from './app-bins.js';
import {
  CoordinatorProcess,
  phantomHome,
  tinySpec,
  TOKEN,
  waitFor,
  waitForEpoch,
  waitForIdleWorkers,
  waitForRunEvent,
  Workers,
} from './process-harness.js';

const keyPrefix = `loss-${randomBytes(3).toString('hex')}`;
process.env.LITS_KEY_PREFIX = keyPrefix;
const redisUrl = serviceUrl('redis');
const LITS = appBin('@lits-ddp/cli', 'lits');

describe.skipIf(!redisUrl)('the experiment record after a worker dies, 2 worker processes', () => {
  let coordinator: CoordinatorProcess;
  let workers: Workers;
  let client: CoordinatorClient;
  let blocking: Redis;
  let base: string;

  beforeAll(async () => {
    const dirs = await phantomHome();
    base = dirname(dirs.dataRoot);
    coordinator = await CoordinatorProcess.start({ redisUrl: redisUrl as string, ...dirs, keyPrefix });
    workers = new Workers({ ...process.env, REDIS_URL: redisUrl, LITS_KEY_PREFIX: keyPrefix }, dirs.logs);
    workers.start('w0');
    workers.start('w1');
    client = new CoordinatorClient({ url: coordinator.url, token: TOKEN });
    blocking = new Redis(redisUrl as string);
    await waitForIdleWorkers(client, 2);
  });

  afterAll(async () => {
    await coordinator?.kill('SIGTERM');
    await workers?.stopAll();
    blocking?.disconnect();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('says restarting, the restart count, the missing worker and the live ones while the run waits, as the stream does', async () => {
    const { id } = await client.submit(
      tinySpec({ max_epochs: 60, 'max-restarts': 2, 'run-name': 'worker-loss' }),
    );
    const training = await waitForEpoch(blocking, id, 1);
    // The record says what the stream says: running on both workers (not a `preparing` read back after `running`).
    const before = await waitFor(
      'the record to say running',
      async () => {
        const d = await client.get(id);
        return d.status === 'running' ? d : undefined;
      },
      30_000,
    );
    expect(before.workerIds?.sort()).toEqual(['w0', 'w1']);
    workers.children.get('w1')?.kill('SIGKILL');
    const restarting = await waitForRunEvent(
      blocking,
      id,
      training.id,
      'the restarting status',
      (e) => e.type === 'status' && e.status === 'restarting',
    );
    expect(restarting.event).toMatchObject({ restarts: 1, lost: ['w1'] });
    await waitForRunEvent(blocking, id, restarting.id, 'the waiting event', (e) => e.type === 'waiting');
    // No replacement is started before the record has said all of it: it must, while the run waits.
    const detail = await waitFor(
      'the record to follow the stream',
      async () => {
        const d = await client.get(id);
        return d.status === 'restarting' && d.waitingForWorkers ? d : undefined;
      },
      30_000,
    );
    expect(detail.restarts).toBe(1);
    expect(detail.workerIds).toEqual(['w0']);
    expect(detail.waitingForWorkers).toMatchObject({ needed: 2, free: 1, missing: 1 });
    expect(detail.waitingForWorkers?.message).toContain('live workers: 1 × cpu');
    const listed = await client.list({ status: 'restarting' });
    expect(listed.items.map((e) => e.id)).toContain(id);
    // `lits status` says it too (the cli's own process, as a user runs it).
    const status = spawnSync(process.execPath, [LITS, 'status', id, '--url', coordinator.url], {
      env: { ...process.env, LITS_API_TOKEN: TOKEN },
      encoding: 'utf8',
    });
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toContain(`${id}  restarting`);
    expect(status.stdout).toMatch(/waiting {3}1 more worker since .*: waiting for 2 free workers/);

    // A replacement registers: the next generation runs, and the record says so.
    workers.start('w1');
    const running = await waitFor('the second generation running', async () => {
      const d = await client.get(id);
      return d.status === 'running' && d.workerIds?.length === 2 ? d : undefined;
    });
    expect(running.restarts).toBe(1);
    expect(running.waitingForWorkers).toBeUndefined();
    await client.cancel(id);
    const end = await client.follow(id, () => undefined);
    expect(end).toMatchObject({ status: 'cancelled', restarts: 1 });
  });
});
