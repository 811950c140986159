import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveModelSource } from '@lits-ddp/inference';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { nativeEngineReady } from '@lits-ddp/native-engine/vitest';
import type { RunEvent } from '@lits-ddp/protocol';
import { phantomSet, runTiny, singleProcessTestMetrics, tinySpec, type ObservedRun } from './phantom-runs.js';

const redisUrl = serviceUrl('redis');
/** The suite runs on both engines: the pure-JS one and TensorFlow's native kernels (tfjs-node-gpu's, minus CUDA). */
const engines = [
  { engine: 'cpu', ready: true },
  { engine: 'node', ready: nativeEngineReady('distributed training on the native engine') },
] as const;

type Progress = Extract<RunEvent, { type: 'progress' }>;
type Metrics = Extract<RunEvent, { type: 'metrics' }>;

for (const { engine, ready } of engines)
  describe.skipIf(!redisUrl || !ready)(
    `distributed training on phantoms, ${engine} engine (real Redis, worker processes)`,
    () => {
      let home: string;
      let dataset: string;
      const finalHash = new Map<string, string>();

      beforeAll(async () => {
        ({ home, dataset } = await phantomSet());
        process.env.LITS_VERIFY_WEIGHTS = '1';
      });
      afterAll(async () => {
        delete process.env.LITS_VERIFY_WEIGHTS;
        await rm(home, { recursive: true, force: true });
      });

      it('2 workers (ring, seed mode): loss goes down, ranks hold identical weights after every step, test metrics equal a single-process evaluation', async () => {
        const spec = tinySpec(dataset, { engine, determinism: 'seed', max_epochs: 4, 'test-epochs': 2 });
        const { result, events } = await runTiny(home, spec);
        expect(result.status, result.error).toBe('finished');
        // Every rank ran the engine asked for, with the spec's thread count on native.
        expect(result.engine).toEqual(
          engine === 'cpu'
            ? { name: 'cpu', threads: null }
            : { name: 'node', threads: { intraOp: 1, interOp: 1 } },
        );
        expect(result.engineFallback).toBeUndefined();

        const losses = events
          .map((e) => e.event)
          .filter((e): e is Metrics => e.type === 'metrics' && e.metrics.train_avg_loss !== undefined)
          .map((e) => e.metrics.train_avg_loss as number);
        expect(losses).toHaveLength(4);
        expect(losses[3]).toBeLessThan(losses[0] as number);

        const byStep = new Map<string, Map<number, string>>();
        for (const { event } of events) {
          if (event.type !== 'progress') continue;
          const p = event as Progress;
          const key = `${p.epoch}/${p.step}`;
          const ranks = byStep.get(key) ?? new Map<number, string>();
          ranks.set(p.rank, p.weightHash as string);
          byStep.set(key, ranks);
        }
        expect(byStep.size).toBe(4 * 2); // 4 epochs × 2 steps
        for (const [step, ranks] of byStep) {
          expect([...ranks.keys()].sort(), step).toEqual([0, 1]);
          expect(new Set(ranks.values()).size, `weights differ at ${step}`).toBe(1);
        }
        expect(new Set(result.weightHashes).size).toBe(1);

        const single = await singleProcessTestMetrics(result.runDir, spec['test-batch-size'], engine);
        expect(result.testMetrics).toEqual(single);
        expect(Object.keys(single).sort()).toEqual(
          ['avg_acc', 'avg_loss', 'iou_0', 'iou_1', 'iou_2', 'mean_iou'].map((m) => `test_${m}`).sort(),
        );

        // The best checkpoint, copied out of its run folder, still says how its input was preprocessed.
        const copied = join(home, 'copied-out', 'best');
        await cp(join(result.runDir, 'checkpoints', 'best'), copied, { recursive: true });
        const source = await resolveModelSource(copied);
        expect(source.runDir).toBeNull();
        expect(source.preprocessingFrom).toMatch(/checkpoint\.json extra\.preprocessing$/);
        expect(source.preprocessing).toEqual({
          preset: 'seed',
          targetSlices: 32,
          downscale: 2,
          cubeSize: 16,
        });
        // And which random streams the next step draws from: the run's seeds, after the checkpoint's epoch.
        const manifest = JSON.parse(await readFile(join(copied, 'checkpoint.json'), 'utf8')) as {
          epoch: number;
          rng: { seed: number; dataSeed: number; epoch: number; step: number };
        };
        expect(manifest.rng).toEqual({
          seed: spec['pytorch-seed'],
          dataSeed: spec['general-seed'],
          epoch: manifest.epoch + 1,
          step: 0,
        });
      });

      it.each([1, 2, 4])('deterministic mode, %i worker(s), 4 micro-batches per step', async (workers) => {
        const { result } = await runTiny(home, tinySpec(dataset, { engine, workers }));
        expect(result.status, result.error).toBe('finished');
        expect(new Set(result.weightHashes).size).toBe(1);
        finalHash.set(`w${workers}`, result.weightHashes?.[0] as string);
      });

      it('deterministic mode gives the same weights at 1, 2 and 4 workers and on a repeated run', async () => {
        const { result } = await runTiny(home, tinySpec(dataset, { engine, workers: 2 }));
        expect(result.status, result.error).toBe('finished');
        finalHash.set('w2-repeat', result.weightHashes?.[0] as string);
        expect(finalHash.size).toBe(4);
        expect(new Set(finalHash.values()).size).toBe(1);
      });

      it('kill -9 of rank 1 mid-epoch: detected in time, restarted from the last checkpoint, same final weights', async () => {
        const spec = tinySpec(dataset, { engine, workers: 2 });
        let killedAt = 0;
        const observed: ObservedRun = await runTiny(home, spec, {
          onEvent: (e, workers) => {
            if (killedAt === 0 && e.type === 'progress' && e.rank === 1 && e.epoch === 1 && e.step === 0) {
              const pid = workers.pid(workers.ids[1] as string);
              if (pid) {
                process.kill(pid, 'SIGKILL');
                killedAt = Date.now();
              }
            }
          },
        });
        const { result, events } = observed;
        expect(killedAt).toBeGreaterThan(0);
        expect(result.status, result.error).toBe('finished');
        expect(result.restarts).toBe(1);
        const restart = events.find((e) => e.event.type === 'status' && e.event.status === 'restarting');
        expect(restart).toBeDefined();
        const detectMs = (restart?.at ?? 0) - killedAt;
        const limitMs = (spec['collective-timeout-s'] + spec['heartbeat-interval-s']) * 1000;
        expect(detectMs).toBeLessThanOrEqual(limitMs);
        process.stderr.write(`kill -9 of rank 1 detected after ${detectMs} ms (limit ${limitMs} ms)\n`);
        const message = restart?.event.type === 'status' ? (restart.event.message ?? '') : '';
        expect(message).toMatch(/rank 1/);
        // Generation 2 resumed from the checkpoint of epoch 0: its first progress is epoch 1.
        const resumed = events
          .map((e) => e.event)
          .find((e): e is Progress => e.type === 'progress' && e.generation === 2);
        expect(resumed?.epoch).toBe(1);
        expect(result.weightHashes?.[0]).toBe(finalHash.get('w2'));
      });

      it('SIGTERM to rank 1 mid-epoch: it aborts the collective, reports, and the run restarts on that report', async () => {
        const spec = tinySpec(dataset, { engine, workers: 2 });
        let signalledAt = 0;
        const { result, events } = await runTiny(home, spec, {
          onEvent: (e, workers) => {
            if (signalledAt === 0 && e.type === 'progress' && e.rank === 1 && e.epoch === 1 && e.step === 0) {
              const pid = workers.pid(workers.ids[1] as string);
              if (pid) {
                process.kill(pid, 'SIGTERM');
                signalledAt = Date.now();
              }
            }
          },
        });
        expect(signalledAt).toBeGreaterThan(0);
        expect(result.status, result.error).toBe('finished');
        expect(result.restarts).toBe(1);
        const failed = events.find((e) => e.event.type === 'failed');
        expect(failed?.event).toMatchObject({ type: 'failed', rank: 1, generation: 1 });
        expect(failed?.event.type === 'failed' && failed.event.error).toMatch(/rank 1 stopped by SIGTERM/);
        // The supervisor acted on the report, not on the heartbeat expiring later.
        const restart = events.find((e) => e.event.type === 'status' && e.event.status === 'restarting');
        const message = restart?.event.type === 'status' ? (restart.event.message ?? '') : '';
        expect(message).toMatch(/^rank 1 failed: rank 1 stopped by SIGTERM/);
        expect(message).not.toMatch(/heartbeat/);
        process.stderr.write(
          `SIGTERM of rank 1: reported after ${(failed?.at ?? 0) - signalledAt} ms, restart after ${(restart?.at ?? 0) - signalledAt} ms\n`,
        );
        // Generation 2 resumed after the last checkpoint before the report (rank 1 finishes the step it is
        // in, so that may be epoch 1's) and ended on the uninterrupted run's weights.
        const lastCheckpoint = events
          .slice(0, events.indexOf(failed as (typeof events)[number]))
          .map((e) => e.event)
          .filter((e) => e.type === 'checkpoint' && e.kind === 'last')
          .at(-1);
        const resumed = events
          .map((e) => e.event)
          .find((e): e is Progress => e.type === 'progress' && e.generation === 2);
        expect(resumed?.epoch).toBe((lastCheckpoint?.type === 'checkpoint' ? lastCheckpoint.epoch : -1) + 1);
        expect(result.weightHashes?.[0]).toBe(finalHash.get('w2'));
      });
    },
  );
