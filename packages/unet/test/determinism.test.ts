// Fresh processes, same seed → identical weight hashes; save at step 2 + resume = 3 straight steps.
// Runs the built package (dist) in child processes, as a worker would.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const fixture = new URL('./fixtures/train-steps.mjs', import.meta.url).pathname;
const dirs: string[] = [];

interface FixtureResult {
  hash: string;
  adamStep: number;
  seed: number | string;
  losses: number[];
}

async function train(...args: string[]): Promise<FixtureResult> {
  const { stdout } = await run(process.execPath, [fixture, ...args], { timeout: 110_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as FixtureResult;
}

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('determinism across processes', () => {
  it('two fresh processes with the same seed give identical weight hashes after 3 steps; resume matches', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'unet-ckpt-'));
    dirs.push(dir);
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
