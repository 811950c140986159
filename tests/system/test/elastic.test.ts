// Elastic deterministic training with real worker processes: a run that loses a worker and gets no
// replacement goes on with fewer, one that finds idle workers at a checkpoint grows, and both end with
// the bits of the runs that never changed size (N = 4 and N = 1), on the cpu engine and on native.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { nativeEngineReady } from '@lits-ddp/native-engine/vitest';
import { CoordinatorClient } from '@lits-ddp/coordinator-client';
import { readEventRange } from '@lits-ddp/orchestrator';
import { type ExperimentSpecInput, type RunEvent } from '@lits-ddp/protocol';
import {
  CoordinatorProcess,
  phantomHome,
  tinySpec,
  TOKEN,
  waitForEpoch,
  waitForIdleWorkers,
  waitForRunEvent,
  Workers,
} from './process-harness.js';

const keyPrefix = `elastic-${randomBytes(3).toString('hex')}`;
process.env.LITS_KEY_PREFIX = keyPrefix;
const redisUrl = serviceUrl('redis');

type GenerationEvent = Extract<RunEvent, { type: 'generation' }>;

/** Every event of a run's stream, in order. */
async function runEvents(redis: Redis, id: string): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for (let from = '-'; ;) {
    const page = await readEventRange(redis, id, from, 500);
    events.push(...page.events.map((e) => e.event));
    if (!page.full || !page.lastId) return events;
    from = `(${page.lastId}`;
  }
}

for (const engine of ['cpu', 'node'] as const) {
  const runs = redisUrl && (engine === 'cpu' || nativeEngineReady('the elastic tests on the native engine'));
  describe.skipIf(!runs)(`elastic training on the ${engine} engine, 4 worker processes`, () => {
    let coordinator: CoordinatorProcess;
    let workers: Workers;
    let client: CoordinatorClient;
    let redis: Redis;
    let base: string;
    const ids = [0, 1, 2, 3].map((i) => `${engine}-w${i}`);
    // 6 training cubes in steps of K = 4 micro-batches: 2 steps an epoch, a checkpoint after each epoch.
    const spec = (extra: ExperimentSpecInput): ExperimentSpecInput =>
      tinySpec({ engine, max_epochs: 4, 'test-epochs': 1, 'elastic-wait-s': 2, ...extra });

    /** Runs a spec to its end: its status, the generations it went through and its ranks' final hashes. */
    async function train(
      extra: ExperimentSpecInput,
      during?: (id: string) => Promise<void>,
    ): Promise<{ id: string; status: string; generations: GenerationEvent[]; hashes: string[] }> {
      const { id } = await client.submit(spec(extra));
      await during?.(id);
      const end = await client.follow(id, () => undefined);
      const events = await runEvents(redis, id);
      const generations = events.filter((e): e is GenerationEvent => e.type === 'generation');
      const last = generations.at(-1)?.generation;
      const hashes = events.flatMap((e) =>
        e.type === 'finished' && e.generation === last ? [e.weightHash] : [],
      );
      return { id, status: end.status, generations, hashes };
    }

    beforeAll(async () => {
      const dirs = await phantomHome();
      base = dirname(dirs.dataRoot);
      coordinator = await CoordinatorProcess.start({ redisUrl: redisUrl as string, ...dirs, keyPrefix });
      workers = new Workers({ ...process.env, REDIS_URL: redisUrl, LITS_KEY_PREFIX: keyPrefix }, dirs.logs);
      for (const id of ids) workers.start(id, engine);
      client = new CoordinatorClient({ url: coordinator.url, token: TOKEN });
      redis = new Redis(redisUrl as string);
      await waitForIdleWorkers(client, 4);
    });

    afterAll(async () => {
      await coordinator?.kill('SIGTERM');
      await workers?.stopAll();
      redis?.disconnect();
      if (base) await rm(base, { recursive: true, force: true });
    });

    let uninterrupted: string;

    it('N = 4 and N = 1 without a change end with one hash (the runs the elastic ones must match)', async () => {
      const four = await train({ workers: 4 });
      const one = await train({ workers: 1 });
      expect([four.status, one.status]).toEqual(['finished', 'finished']);
      expect(four.generations.map((g) => [g.worldSize, g.change])).toEqual([[4, 'start']]);
      expect(new Set(four.hashes).size).toBe(1);
      uninterrupted = four.hashes[0] as string;
      expect(one.hashes).toEqual([uninterrupted]);
      console.log(`${engine}: uninterrupted N=4 and N=1 hash ${uninterrupted}`);
    });

    it('kill -9 of one of 4 ranks mid-epoch, no replacement: goes on at N = 3 from its checkpoint, same hash', async () => {
      let killedAt = 0;
      let resumedAt = 0;
      let victim = '';
      const run = await train({ workers: 4, 'min-workers': 3 }, async (id) => {
        const training = await waitForEpoch(redis, id, 1);
        const detail = await client.get(id);
        victim = detail.workerIds?.[3] as string;
        workers.children.get(victim)?.kill('SIGKILL');
        killedAt = Date.now();
        const shrunk = await waitForRunEvent(
          redis,
          id,
          training.id,
          'the shrunk generation',
          (e) => e.type === 'generation' && e.change === 'shrink',
        );
        const gen = (shrunk.event as GenerationEvent).generation;
        await waitForRunEvent(
          redis,
          id,
          shrunk.id,
          'training at N = 3',
          (e) => e.type === 'progress' && e.generation === gen,
        );
        resumedAt = Date.now();
      });
      // Back only now: a replacement registered before the last checkpoint would grow the run back to 4.
      workers.start(victim, engine);
      expect(run.status).toBe('finished');
      const sizes = run.generations.map((g) => [g.worldSize, g.change]);
      expect(sizes).toEqual([
        [4, 'start'],
        [3, 'shrink'],
      ]);
      const shrink = run.generations[1] as GenerationEvent;
      expect(shrink.resumeEpoch).toBeGreaterThanOrEqual(1);
      expect(shrink.reason).toMatch(/lost its heartbeat|rank 3 failed|did not deliver/);
      expect(shrink.reason).toMatch(/goes on with 3 of 4 workers/);
      expect(run.hashes).toEqual([uninterrupted, uninterrupted, uninterrupted]);
      // The REST record says what the stream says: the generations, their sizes and why.
      const detail = await client.get(run.id);
      expect(detail.restarts).toBe(1);
      expect(detail.workerIds).toHaveLength(3);
      expect(detail.worldSize).toBe(3);
      expect(detail.generations?.map((g) => [g.worldSize, g.change, g.reason])).toEqual(
        run.generations.map((g) => [g.worldSize, g.change, g.reason]),
      );
      console.log(
        `${engine}: shrink 4 → 3 hash ${run.hashes[0]}; kill -9 → training at N = 3: ${resumedAt - killedAt} ms`,
      );
      await waitForIdleWorkers(client, 4);
    });

    it('grows 2 → 4 at its first checkpoint when 2 workers are idle, without a restart: same hash', async () => {
      const run = await train({ workers: 2, 'max-workers': 4 });
      expect(run.status).toBe('finished');
      expect(run.generations.map((g) => [g.worldSize, g.change, g.resumeEpoch])).toEqual([
        [2, 'start', 0],
        [4, 'grow', 1],
      ]);
      expect(run.generations[1]?.reason).toMatch(/2 idle workers free at the checkpoint of epoch 0/);
      expect(run.hashes).toEqual([uninterrupted, uninterrupted, uninterrupted, uninterrupted]);
      expect((await client.get(run.id)).restarts).toBe(0);
      console.log(`${engine}: grow 2 → 4 hash ${run.hashes[0]}`);
    });

    // The wait and its message do not depend on the engine: once, on cpu.
    if (engine === 'cpu')
      it('below min-workers it waits worker-wait-s, then fails naming how many it needed and found', async () => {
        let victim = '';
        const run = await train({ workers: 4, 'min-workers': 4, 'worker-wait-s': 3 }, async (id) => {
          await waitForEpoch(redis, id, 1);
          victim = (await client.get(id)).workerIds?.[1] as string;
          workers.children.get(victim)?.kill('SIGKILL');
        });
        expect(run.status).toBe('failed');
        expect(run.generations.map((g) => g.worldSize)).toEqual([4]);
        const detail = await client.get(run.id);
        expect(detail.error).toMatch(
          /fewer than 4 live, free workers after waiting \d+ s \(needed 4, found [0-3]\)/,
        );
        workers.start(victim, engine);
        await waitForIdleWorkers(client, 4);
      });
  });
}
