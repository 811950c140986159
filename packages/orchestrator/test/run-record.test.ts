// A run record that is there but does not decode is an error naming its key, never an absent record:
// reading it as absent would start the run a second time with new seeds and a second tracking run.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { JsonDecodeError, resolveSpec, runKeys, type ResolvedSpec } from '@lits-ddp/protocol';
import { runExperiment, type ExperimentResult } from '../src/index.js';
import { loadRunRecord, saveRunRecord } from '../src/orchestration/run-record.js';

process.env.LITS_KEY_PREFIX = `record-${randomBytes(3).toString('hex')}`;

const redisUrl = serviceUrl('redis');

function spec(): ResolvedSpec {
  const r = resolveSpec({ 'dataset-path': '/no/such/dataset', determinism: 'random' });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

describe.skipIf(!redisUrl)('run records (real Redis)', () => {
  let redis: Redis;
  let home: string;
  beforeAll(async () => {
    redis = new Redis(redisUrl as string);
    home = await mkdtemp(join(tmpdir(), 'run-record-'));
  });
  afterAll(async () => {
    await redis.quit();
    await rm(home, { recursive: true, force: true });
  });

  const newRunId = (): string => `run-${randomBytes(4).toString('hex')}`;

  it('lives under the key it always had', () => {
    expect(runKeys.record('r1')).toBe(`${process.env.LITS_KEY_PREFIX}:run:r1:record`);
  });

  it('reads back what was saved, and a run without a record as absent', async () => {
    const runId = newRunId();
    expect(await loadRunRecord(redis, runId)).toBeUndefined();
    await saveRunRecord(redis, runId, { seeds: { data: 7, model: 9 }, phase: 'preparing' });
    await saveRunRecord(redis, runId, { tracker: { kind: 'local', runId, location: '/tmp/x' } });
    expect(await loadRunRecord(redis, runId)).toEqual({
      seeds: { data: 7, model: 9 },
      phase: 'preparing',
      tracker: { kind: 'local', runId, location: '/tmp/x' },
    });
    // Kept while the run lives.
    expect(await redis.ttl(runKeys.record(runId))).toBe(-1);
  });

  it.each([
    ['seeds that are not JSON', { seeds: '{"data":7,', phase: 'training' }, /field seeds: not valid JSON/],
    ['seeds of the wrong shape', { seeds: '{"data":"seven","model":9}', phase: 'training' }, /\/data/],
    ['an unknown phase', { seeds: '{"data":7,"model":9}', phase: 'halfway' }, /\/phase/],
    [
      'a tracker of the wrong shape',
      { seeds: '{"data":7,"model":9}', phase: 'training', tracker: '{"kind":"ftp"}' },
      /field tracker: /,
    ],
    ['no seeds', { phase: 'training', tracker: '{"kind":"local","runId":"r","location":"/x"}' }, /seeds/],
  ])('a record with %s is an error naming its key', async (_what, hash, problem) => {
    const runId = newRunId();
    await redis.hset(runKeys.record(runId), hash);
    const load = loadRunRecord(redis, runId);
    await expect(load).rejects.toThrow(JsonDecodeError);
    await expect(load).rejects.toThrow(`run record ${runKeys.record(runId)}`);
    await expect(load).rejects.toThrow(problem);
  });

  it('runExperiment fails on a corrupt record instead of starting the run again with new seeds', async () => {
    const runId = newRunId();
    const corrupt = { seeds: 'not json', phase: 'training' };
    await redis.hset(runKeys.record(runId), corrupt);
    await expect(
      runExperiment({ runId, spec: spec(), redis, redisUrl: redisUrl as string, home }),
    ).rejects.toThrow(`run record ${runKeys.record(runId)}, field seeds: not valid JSON`);
    // Nothing started: the record is as it was (no fresh seeds), no plan, no status, no events, no run folder.
    expect(await redis.hgetall(runKeys.record(runId))).toEqual(corrupt);
    expect(await redis.exists(runKeys.plan(runId), runKeys.status(runId), runKeys.events(runId))).toBe(0);
    expect(existsSync(join(home, 'runs', runId))).toBe(false);
  });

  it('a done run returns its stored result, with NaN metrics (null in JSON) restored', async () => {
    const runId = newRunId();
    const result: ExperimentResult = {
      status: 'finished',
      restarts: 0,
      generation: 1,
      testMetrics: { test_avg_loss: Number.NaN, test_mean_iou: 0.5 },
      runId,
      runDir: join(home, 'runs', runId),
      seeds: { data: 1, model: 2 },
      tracker: { kind: 'local', runId, location: join(home, 'runs', runId), delivered: true },
    };
    await saveRunRecord(redis, runId, { seeds: result.seeds, phase: 'done', result: JSON.stringify(result) });
    const again = await runExperiment({ runId, spec: spec(), redis, redisUrl: redisUrl as string, home });
    expect(again).toEqual(result);
    expect(again.testMetrics?.test_avg_loss).toBeNaN();

    await redis.hset(runKeys.record(runId), 'result', '{"status":"finished"}');
    await expect(
      runExperiment({ runId, spec: spec(), redis, redisUrl: redisUrl as string, home }),
    ).rejects.toThrow(
      `run record ${runKeys.record(runId)}, field result: the value must have required properties`,
    );
  });
});
