import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { CoordinatorClient } from '@lits-ddp/coordinator-client';
import { readEventRange, type StreamedEvent } from '@lits-ddp/orchestrator';
import { admissionKeys, workerKeys, type RunEvent, type RunStatus } from '@lits-ddp/protocol';
import {
  CoordinatorProcess,
  lastRunEventId,
  phantomCopies,
  phantomHome,
  tinySpec,
  TOKEN,
  waitFor,
  waitForEpoch,
  waitForRunEvent,
  Workers,
} from './process-harness.js';

const keyPrefix = `cancel-${randomBytes(3).toString('hex')}`;
// The processes get it in their environment; this one needs it to name the keys it reads itself.
process.env.LITS_KEY_PREFIX = keyPrefix;
const redisUrl = serviceUrl('redis');
const WORKER_IDS = ['w0', 'w1'];
/** What each cancel must achieve, counted from the DELETE: the `cancelled` status, and the workers idle. */
const CANCEL_BOUND_MS = 5000;
/** Copies of one large phantom case: validating them all takes far longer than the cancel may. */
const SLOW_PREPARATION = 'copies-slow-preparation';
/** Copies of one case at cube size 32, 90 % of them in the test split: the last evaluations take seconds. */
const LARGE_TEST_SPLIT = 'copies-large-test-split';

/** Every event of a run's stream in Redis, oldest first. */
async function allRunEvents(redis: Redis, runId: string): Promise<StreamedEvent[]> {
  const out: StreamedEvent[] = [];
  for (let from = '-'; ;) {
    const page = await readEventRange(redis, runId, from, 1000);
    out.push(...page.events);
    if (!page.full || !page.lastId) return out;
    from = `(${page.lastId}`;
  }
}

/** Of `ids`, the workers whose registry entry still names `runId` (a rank drops it when it ends). */
async function serving(redis: Redis, runId: string, ids: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of ids)
    if ((await redis.hget(workerKeys.info(id), 'runId')) === JSON.stringify(runId)) out.push(id);
  return out;
}

const isStatus =
  (status: RunStatus) =>
  (e: RunEvent): boolean =>
    e.type === 'status' && e.status === status;

/** An event as a word: its status for a status event, else its type. */
const word = (e: StreamedEvent): string => (e.event.type === 'status' ? e.event.status : e.event.type);

/** A stream id's milliseconds (Redis's clock, which the run's writers share). */
const streamMs = (id: string): number => Number(id.split('-')[0]);

/** Every file under `dir` (none when it does not exist), with its modification time. */
function filesUnder(dir: string): { file: string; mtimeMs: number }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((file) => ({ file, mtimeMs: statSync(file).mtimeMs }));
}

describe.skipIf(!redisUrl)('cancel in each state of a run, 2 worker processes', () => {
  let coordinator: CoordinatorProcess;
  let workers: Workers;
  let client: CoordinatorClient;
  let redis: Redis;
  let blocking: Redis;
  let home: string;
  let base: string;

  /** Waits until each of `ids` is idle and leased to no run; throws past `timeoutMs`. */
  async function idle(ids: readonly string[], timeoutMs: number): Promise<void> {
    await waitFor(
      `${ids.join(', ')} idle and unleased`,
      async () => {
        const { workers: list } = await client.workers();
        const free = list.filter((w) => ids.includes(w.id) && w.state === 'idle' && !w.leasedTo);
        return free.length === ids.length ? true : undefined;
      },
      timeoutMs,
    );
  }

  /** Waits for the experiment record to say `status` (it is written after the run's stream says so). */
  async function recordSays(id: string, status: string): Promise<void> {
    await waitFor(
      `experiment ${id} ${status}`,
      async () => ((await client.get(id)).status === status ? true : undefined),
      30_000,
    );
  }

  /**
   * DELETEs a started experiment and checks what a cancel promises: the `cancelled` status and `workers` idle and
   * unleased within CANCEL_BOUND_MS, every rank stopped before `cancelled`, and no progress or checkpoint after it.
   * `from` is a stream id before the cancel. Returns the run's whole stream and the `cancelled` event.
   */
  async function cancelAndCheck(
    id: string,
    from: string,
    workerIds: readonly string[],
  ): Promise<{ events: StreamedEvent[]; cancelled: StreamedEvent }> {
    const deleteAt = Date.now();
    expect((await client.cancel(id)).status).toBe('cancelling');
    const cancelled = await waitForRunEvent(
      blocking,
      id,
      from,
      'the cancelled status',
      isStatus('cancelled'),
      60_000,
    );
    const cancelledAfterMs = Date.now() - deleteAt;
    const servingAtCancelled = await serving(redis, id, workerIds);
    await idle(workerIds, CANCEL_BOUND_MS + 5000);
    const idleAfterMs = Date.now() - deleteAt;
    process.stdout.write(
      `cancel ${id}: cancelled ${cancelledAfterMs} ms, workers idle ${idleAfterMs} ms after the DELETE\n`,
    );
    // Idle workers publish nothing more for the run: the stream is complete, and the cancel is its last word.
    const events = await allRunEvents(redis, id);
    const at = events.findIndex((e) => e.id === cancelled.id);
    expect(at).toBeGreaterThan(0);
    const after = events.slice(at + 1).map((e) => e.event.type);
    expect(after.filter((t) => t === 'progress' || t === 'checkpoint')).toEqual([]);
    expect(events.filter((e) => e.event.type === 'finished')).toEqual([]);
    // The supervisor publishes `cancelled` only once every rank has stopped serving the run.
    expect(servingAtCancelled).toEqual([]);
    expect(cancelledAfterMs).toBeLessThan(CANCEL_BOUND_MS);
    expect(idleAfterMs).toBeLessThan(CANCEL_BOUND_MS);
    await recordSays(id, 'cancelled');
    return { events, cancelled };
  }

  beforeAll(async () => {
    const dirs = await phantomHome();
    base = dirname(dirs.dataRoot);
    home = dirs.home;
    await phantomCopies(join(dirs.dataRoot, SLOW_PREPARATION), 250, [256, 256, 64]);
    await phantomCopies(join(dirs.dataRoot, LARGE_TEST_SPLIT), 80, [64, 64, 32]);
    coordinator = await CoordinatorProcess.start({ redisUrl: redisUrl as string, ...dirs, keyPrefix });
    workers = new Workers({ ...process.env, REDIS_URL: redisUrl, LITS_KEY_PREFIX: keyPrefix }, dirs.logs);
    for (const id of WORKER_IDS) workers.start(id);
    client = new CoordinatorClient({ url: coordinator.url, token: TOKEN });
    redis = new Redis(redisUrl as string);
    blocking = new Redis(redisUrl as string);
    await idle(WORKER_IDS, 120_000);
  });

  afterAll(async () => {
    await coordinator?.kill('SIGTERM');
    await workers?.stopAll();
    redis?.disconnect();
    blocking?.disconnect();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('queued: leaves the capacity gate cancelled, never prepares or starts, and the run on the workers goes on', async () => {
    const holder = (await client.submit(tinySpec({ max_epochs: 60, 'run-name': 'holds-the-workers' }))).id;
    await waitForRunEvent(blocking, holder, '0', 'a progress event', (e) => e.type === 'progress');
    const { id } = await client.submit(tinySpec({ 'run-name': 'cancelled-while-queued' }));
    // The processor has taken it and holds it at the capacity gate, as no worker is free.
    await waitFor('the experiment waiting at the capacity gate', async () =>
      (await redis.zscore(admissionKeys.queue(), id)) !== null ? true : undefined,
    );
    const statusBefore = (await client.get(id)).status;
    const deleteAt = Date.now();
    expect((await client.cancel(id)).status).toBe('cancelling');
    await waitForRunEvent(blocking, id, '0', 'the cancelled status', isStatus('cancelled'), 30_000);
    const cancelledAfterMs = Date.now() - deleteAt;
    const events = (await allRunEvents(redis, id)).map(word);
    const gateEntry = await redis.zscore(admissionKeys.queue(), id);

    // The run holding the workers trains on, on both of them, and is then cancelled too.
    const progressed = await waitForRunEvent(
      blocking,
      holder,
      await lastRunEventId(redis, holder),
      'progress after the other cancel',
      (e) => e.type === 'progress',
    );
    const holderServedBy = (await serving(redis, holder, WORKER_IDS)).sort();
    await cancelAndCheck(holder, progressed.id, WORKER_IDS);

    expect(statusBefore).toBe('queued');
    expect(cancelledAfterMs).toBeLessThan(CANCEL_BOUND_MS);
    for (const never of ['preparing', 'running', 'started', 'progress']) expect(events).not.toContain(never);
    expect(events.at(-1)).toBe('cancelled');
    expect(gateEntry).toBeNull();
    await recordSays(id, 'cancelled');
    expect(holderServedBy).toEqual(WORKER_IDS);
  });

  it('starting: stops the data preparation, so the run is cancelled at once and never leases a worker', async () => {
    const { id } = await client.submit(
      tinySpec({ 'dataset-path': SLOW_PREPARATION, 'run-name': 'cancelled-while-preparing' }),
    );
    const preparing = await waitForRunEvent(blocking, id, '0', 'the preparing status', isStatus('preparing'));
    const { events } = await cancelAndCheck(id, preparing.id, WORKER_IDS);
    const words = events.map(word);
    for (const never of ['running', 'started', 'progress', 'checkpoint']) expect(words).not.toContain(never);
    expect(words.at(-1)).toBe('cancelled');
    // The preparation stopped rather than ran out: split.json is written when it returns.
    expect(existsSync(join(home, 'runs', id, 'split.json'))).toBe(false);
  });

  it('running: stops both ranks before the run is cancelled: no progress or checkpoint after, workers idle within 5 s', async () => {
    // Enough epochs that the run is still training long after the cancel.
    const { id } = await client.submit(tinySpec({ max_epochs: 60, 'run-name': 'cancelled-while-running' }));
    // Past the first epoch's checkpoint, so a rank that trained on would write more.
    const training = await waitForEpoch(blocking, id, 1);
    await cancelAndCheck(id, training.id, WORKER_IDS);
  });

  it('restarting: a run waiting for a worker to replace a killed one is cancelled at once, the survivor idle', async () => {
    const [survivor, victim] = WORKER_IDS as [string, string];
    try {
      const { id } = await client.submit(
        tinySpec({ max_epochs: 60, 'max-restarts': 2, 'run-name': 'cancelled-while-restarting' }),
      );
      const training = await waitForEpoch(blocking, id, 1);
      workers.children.get(victim)?.kill('SIGKILL');
      // The supervisor stops the survivor, says `restarting` and waits for a second free worker: there is none.
      const restarting = await waitForRunEvent(
        blocking,
        id,
        training.id,
        'the restarting status',
        isStatus('restarting'),
        60_000,
      );
      const { events } = await cancelAndCheck(id, restarting.id, [survivor]);
      const at = events.findIndex((e) => e.id === restarting.id);
      const since = events.slice(at + 1).map(word);
      for (const never of ['running', 'started', 'progress']) expect(since).not.toContain(never);
    } finally {
      workers.start(victim);
    }
    await idle(WORKER_IDS, 120_000);
  });

  it('finishing: stops the final evaluation; no finished event, no checkpoint or model written after', async () => {
    const { id } = await client.submit(
      tinySpec({
        'dataset-path': LARGE_TEST_SPLIT,
        'cube-size': 32,
        'test-percent': 0.9,
        max_epochs: 1,
        'test-epochs': 1,
        'run-name': 'cancelled-while-finishing',
      }),
    );
    // Rank 0 reports the last epoch's metrics (lr among them) just before the ranks go on to the final checkpoint,
    // the model export and the evaluation of the test split, which takes seconds here.
    const lastEpoch = await waitForRunEvent(
      blocking,
      id,
      '0',
      "the last epoch's metrics",
      (e) => e.type === 'metrics' && e.epoch === 0 && 'lr' in e.metrics,
      180_000,
    );
    const { events, cancelled } = await cancelAndCheck(id, lastEpoch.id, WORKER_IDS);
    const testMetrics = events.filter(
      (e) => e.event.type === 'metrics' && Object.keys(e.event.metrics).some((k) => k.startsWith('test_')),
    );
    expect(testMetrics).toEqual([]);
    const runDir = join(home, 'runs', id);
    const written = [...filesUnder(join(runDir, 'checkpoints')), ...filesUnder(join(runDir, 'model'))];
    expect(written.filter((f) => f.mtimeMs > streamMs(cancelled.id))).toEqual([]);
  }, 300_000);
});
