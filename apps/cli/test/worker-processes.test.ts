import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gpuCount, workerEnv } from '../src/launcher/worker-processes.js';

describe('the local launcher pins one GPU per worker', () => {
  const savedPath = process.env.PATH;
  let fakeBin: string | undefined;
  afterEach(async () => {
    process.env.PATH = savedPath;
    if (fakeBin) await rm(fakeBin, { recursive: true, force: true });
    fakeBin = undefined;
  });

  it('counts the GPUs that nvidia-smi -L lists', async () => {
    fakeBin = await mkdtemp(join(tmpdir(), 'fake-nvidia-smi-'));
    const script = join(fakeBin, 'nvidia-smi');
    await writeFile(
      script,
      [
        '#!/bin/sh',
        'echo "GPU 0: NVIDIA H200 (UUID: GPU-aaaa)"',
        'echo "GPU 1: NVIDIA H200 (UUID: GPU-bbbb)"',
        'echo "GPU 2: NVIDIA H200 (UUID: GPU-cccc)"',
        '',
      ].join('\n'),
    );
    await chmod(script, 0o755);
    process.env.PATH = `${fakeBin}${delimiter}${savedPath ?? ''}`;
    expect(gpuCount()).toBe(3);
  });

  it('counts none when nvidia-smi is missing', () => {
    process.env.PATH = '/nonexistent';
    expect(gpuCount()).toBe(0);
  });

  it('gives worker i CUDA_VISIBLE_DEVICES = i mod GPUs, replacing an inherited value', () => {
    const base = { PATH: '/usr/bin', CUDA_VISIBLE_DEVICES: '5,6', TFJS_ENGINE: 'gpu' };
    const envs = [0, 1, 2, 3, 4].map((i) => workerEnv(base, 'redis://127.0.0.1:6390', i, 3));
    expect(envs.map((e) => e.CUDA_VISIBLE_DEVICES)).toEqual(['0', '1', '2', '0', '1']);
    for (const env of envs) {
      expect(env.REDIS_URL).toBe('redis://127.0.0.1:6390');
      expect(env.PATH).toBe('/usr/bin');
      expect(env.TFJS_ENGINE).toBe('gpu');
    }
    expect(base.CUDA_VISIBLE_DEVICES).toBe('5,6');
  });

  it('leaves CUDA_VISIBLE_DEVICES as inherited when there is no GPU', () => {
    const env = workerEnv({ CUDA_VISIBLE_DEVICES: '2' }, 'redis://h:1', 1, 0);
    expect(env).toEqual({ CUDA_VISIBLE_DEVICES: '2', REDIS_URL: 'redis://h:1' });
    expect(workerEnv({}, 'redis://h:1', 0, 0)).toEqual({ REDIS_URL: 'redis://h:1' });
  });
});
