import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent, RunPlan } from '@lits-ddp/protocol';
import { loadEngine, saveCheckpoint, UNet3D, type Engine } from '@lits-ddp/unet';
import { bestCheckpointModel, type TrainingContext } from '../src/training/training-loop.js';

describe('the test phase takes the best checkpoint, and says so when it cannot', () => {
  let engine: Engine;
  let dir: string;
  let final: UNet3D;
  beforeAll(async () => {
    engine = await loadEngine({ engine: 'cpu' });
    dir = await mkdtemp(join(tmpdir(), 'best-checkpoint-'));
    final = UNet3D.create(engine.tf, { seed: 1, architecture: { width: 2 } });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function context(checkpointDir: string): { ctx: TrainingContext; events: RunEvent[]; lines: string[] } {
    const events: RunEvent[] = [];
    const lines: string[] = [];
    const plan = { paths: { runDir: dir, cacheDir: dir, checkpointDir } } as unknown as RunPlan;
    const ctx: TrainingContext = {
      plan,
      rank: 1,
      redisUrl: 'redis://unused',
      engine,
      publish: async (e) => void events.push(e),
      signal: new AbortController().signal,
      log: (l) => void lines.push(l),
    };
    return { ctx, events, lines };
  }

  it('loads checkpoints/best when it is there, quietly', async () => {
    const checkpointDir = join(dir, 'good');
    const best = UNet3D.create(engine.tf, { seed: 2, architecture: { width: 2 } });
    await saveCheckpoint(join(checkpointDir, 'best'), { model: best, epoch: 3, step: 0 });
    const { ctx, events } = context(checkpointDir);
    const tested = await bestCheckpointModel(ctx, final);
    expect(tested.weightHash()).toBe(best.weightHash());
    expect(tested.weightHash()).not.toBe(final.weightHash());
    expect(events).toEqual([]);
  });

  it('tests the final weights when there is no best checkpoint, with a warning naming the path', async () => {
    const checkpointDir = join(dir, 'none');
    const { ctx, events, lines } = context(checkpointDir);
    expect(await bestCheckpointModel(ctx, final)).toBe(final);
    const path = join(checkpointDir, 'best');
    expect(events).toEqual([
      {
        type: 'log',
        rank: 1,
        level: 'warn',
        message: `rank 1: cannot load the best checkpoint ${path}: it does not exist (no test epoch improved the train loss, or this rank cannot see that folder); testing the final weights instead`,
      },
    ]);
    expect(lines).toEqual([events[0]?.type === 'log' ? events[0].message : '']);
  });

  it('gives the loader reason when the best checkpoint is unreadable', async () => {
    const checkpointDir = join(dir, 'broken');
    await mkdir(join(checkpointDir, 'best'), { recursive: true });
    await writeFile(join(checkpointDir, 'best', 'checkpoint.json'), '{ not json');
    const { ctx, events } = context(checkpointDir);
    expect(await bestCheckpointModel(ctx, final)).toBe(final);
    const warning = events[0];
    expect(warning?.type === 'log' && warning.level).toBe('warn');
    const message = warning?.type === 'log' ? warning.message : '';
    expect(message).toContain(`cannot load the best checkpoint ${join(checkpointDir, 'best')}: `);
    expect(message).toContain('checkpoint.json');
    expect(message).not.toContain('does not exist');
  });
});
