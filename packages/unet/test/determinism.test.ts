// Fresh processes, same seed → identical weight hashes; save at step 2 + resume = 3 straight steps. On the cpu
// engine and, where it loads, on native TensorFlow pinned to 1 intra-op thread (and why it is pinned).
// Runs the built package (dist) in child processes, as a worker would.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeEngineReady } from '@lits-ddp/native-engine/vitest';

const run = promisify(execFile);
const fixture = new URL('./fixtures/train-steps.mjs', import.meta.url).pathname;
const dirs: string[] = [];

interface FixtureResult {
  hash: string;
  adamStep: number;
  seed: number | string;
  losses: number[];
  engine: string;
}

async function train(...args: string[]): Promise<FixtureResult> {
  const { stdout } = await run(process.execPath, [fixture, ...args], { timeout: 110_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as FixtureResult;
}

async function checkpointDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'unet-ckpt-'));
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('determinism across processes', () => {
  it('two fresh processes with the same seed give identical weight hashes after 3 steps; resume matches', async () => {
    const dir = await checkpointDir();
    const [a, b, other, first2] = await Promise.all([
      train('--seed', '7', '--steps', '3'),
      train('--seed', '7', '--steps', '3'),
      train('--seed', '8', '--steps', '3'),
      train('--seed', '7', '--steps', '2', '--save', dir),
    ]);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
    expect(b.losses).toEqual(a.losses);
    expect(other.hash).not.toBe(a.hash);
    expect(first2.hash).not.toBe(a.hash);

    // The resume has no --seed: the seed and the step counter come from the checkpoint's rng alone.
    const manifest = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as { rng: unknown };
    expect(manifest.rng).toEqual({ seed: 7, dataSeed: 7, epoch: 0, step: 2 });
    const resumed = await train('--resume', dir, '--steps', '3');
    expect(resumed.seed).toBe(7);
    expect(resumed.adamStep).toBe(3);
    expect(resumed.losses).toEqual(a.losses.slice(2));
    expect(resumed.hash).toBe(a.hash);
  });
});

describe.skipIf(!nativeEngineReady('the native determinism tests'))(
  'determinism across processes, native TensorFlow',
  () => {
    const native = (...args: string[]) => train('--engine', 'node', ...args);

    it('1 intra-op thread: fresh processes with the same seed give identical hashes; resume matches', async () => {
      const dir = await checkpointDir();
      // Concurrent, as in the cpu suite: the bits must not depend on what else runs on the cores.
      const [a, b, first2] = await Promise.all([
        native('--threads', '1', '--seed', '7', '--steps', '3'),
        native('--threads', '1', '--seed', '7', '--steps', '3'),
        native('--threads', '1', '--seed', '7', '--steps', '2', '--save', dir),
      ]);
      expect(a.engine).toMatch(/^engine node \(.*libtensorflow .*, 1 intra-op thread, 1 inter-op thread\)$/);
      expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(b.hash).toBe(a.hash);
      expect(b.losses).toEqual(a.losses);
      expect(first2.hash).not.toBe(a.hash);

      const manifest = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as {
        rng: unknown;
        engine: unknown;
      };
      expect(manifest.rng).toEqual({ seed: 7, dataSeed: 7, epoch: 0, step: 2 });
      expect(manifest.engine).toMatchObject({ name: 'node', threads: { intraOp: 1, interOp: 1 } });
      const resumed = await native('--threads', '1', '--resume', dir, '--steps', '3');
      expect(resumed.seed).toBe(7);
      expect(resumed.adamStep).toBe(3);
      expect(resumed.losses).toEqual(a.losses.slice(2));
      expect(resumed.hash).toBe(a.hash);
    });

    it('intra-op 1 vs 2 threads gives different bits (why a deterministic run pins the count)', async () => {
      // Measured at the fixture's size (width 4, 12³): the hashes differ and the third loss already moves in the
      // 3rd digit (0.04660 vs 0.04688); each count on its own repeated its hash in 3 runs.
      const one = await native('--threads', '1', '--seed', '7', '--steps', '3');
      const two = await native('--threads', '2', '--seed', '7', '--steps', '3');
      expect(two.engine).toMatch(/, 2 intra-op threads, 1 inter-op thread\)$/);
      expect(two.hash).not.toBe(one.hash);
    });
  },
);
