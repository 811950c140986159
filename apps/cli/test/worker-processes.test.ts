import { describe, expect, it } from 'vitest';
import { parseNvidiaSmiGpus, visibleGpus } from '@lits-ddp/trainer';
import { checkGpuWorkerCount, localWorkerIds, workerEnv } from '../src/launcher/worker-processes.js';

// nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version --format=csv,noheader,nounits
const EIGHT_GPUS = Array.from(
  { length: 8 },
  (_, i) => `${i}, GPU-${i}aaa0000-1111-2222-3333-444455556666, NVIDIA H200, 143771, 550.54.15`,
).join('\n');

describe('the local launcher pins one GPU per worker', () => {
  const all = parseNvidiaSmiGpus(EIGHT_GPUS);

  it('refuses more engine gpu workers than visible GPUs, naming both counts; other engines may share', () => {
    expect(() => checkGpuWorkerCount('gpu', 3, all.slice(0, 2))).toThrow(
      /engine gpu: 3 workers need 3 visible GPUs, found 2 .*lower --workers \(and max-workers\) to 2/,
    );
    expect(() => checkGpuWorkerCount('gpu', 1, [])).toThrow(/found 0/);
    expect(() => checkGpuWorkerCount('gpu', 2, all.slice(0, 2))).not.toThrow();
    expect(() => checkGpuWorkerCount('auto', 5, all.slice(0, 2))).not.toThrow();
  });

  it('gives worker i the i-th visible GPU, round robin, in PCI bus order', () => {
    const base = { PATH: '/usr/bin', TFJS_ENGINE: 'gpu' };
    const envs = [0, 1, 2, 3, 4].map((i) => workerEnv(base, 'redis://127.0.0.1:6390', i, all.slice(0, 3)));
    expect(envs.map((e) => e.CUDA_VISIBLE_DEVICES)).toEqual(['0', '1', '2', '0', '1']);
    for (const env of envs) {
      expect(env.CUDA_DEVICE_ORDER).toBe('PCI_BUS_ID');
      expect(env.REDIS_URL).toBe('redis://127.0.0.1:6390');
      expect(env.PATH).toBe('/usr/bin');
      expect(env.TFJS_ENGINE).toBe('gpu');
    }
  });

  it('keeps to the GPUs an inherited CUDA_VISIBLE_DEVICES leaves visible', () => {
    const base = { CUDA_VISIBLE_DEVICES: '5,GPU-6aaa,2' };
    const gpus = visibleGpus(all, base.CUDA_VISIBLE_DEVICES);
    const envs = [0, 1, 2, 3].map((i) => workerEnv(base, 'redis://h:1', i, gpus));
    expect(envs.map((e) => e.CUDA_VISIBLE_DEVICES)).toEqual(['5', '6', '2', '5']);
    expect(base.CUDA_VISIBLE_DEVICES).toBe('5,GPU-6aaa,2');
  });

  it('leaves the CUDA variables as inherited when no GPU is visible', () => {
    const hidden = { CUDA_VISIBLE_DEVICES: '-1' };
    expect(workerEnv(hidden, 'redis://h:1', 1, visibleGpus(all, '-1'))).toEqual({
      CUDA_VISIBLE_DEVICES: '-1',
      REDIS_URL: 'redis://h:1',
    });
    expect(workerEnv({ CUDA_VISIBLE_DEVICES: '' }, 'redis://h:1', 0, visibleGpus(all, ''))).toEqual({
      CUDA_VISIBLE_DEVICES: '',
      REDIS_URL: 'redis://h:1',
    });
    expect(workerEnv({}, 'redis://h:1', 0, [])).toEqual({ REDIS_URL: 'redis://h:1' });
  });
});

describe('the local launcher starts one worker per rank of the largest generation', () => {
  it('max(workers, max-workers) ids in rank order: the extra ones idle until the run grows onto them', () => {
    expect(localWorkerIds('run-x', { workers: 2, 'max-workers': 2 })).toEqual(['run-x-w0', 'run-x-w1']);
    expect(localWorkerIds('run-x', { workers: 1, 'max-workers': 3 })).toEqual([
      'run-x-w0',
      'run-x-w1',
      'run-x-w2',
    ]);
    // A shrink-only run (min-workers below workers) needs no extra process.
    expect(localWorkerIds('run-x', { workers: 2, 'max-workers': 2 })).toHaveLength(2);
  });
});
