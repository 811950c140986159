import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  discoverGpus,
  gpuPinningEnv,
  listGpus,
  parseNvidiaSmiGpus,
  visibleGpus,
  type GpuDevice,
} from '../src/index.js';

// What `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version --format=csv,noheader,nounits` prints.
const FOUR_GPUS = [
  '0, GPU-1a2b3c4d-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 81559, 550.54.15',
  '1, GPU-5e6f7a8b-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 81559, 550.54.15',
  '2, GPU-9c0d1e2f-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 81559, 550.54.15',
  '3, GPU-9c0d9999-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, [N/A], 550.54.15',
  '',
].join('\n');

const indexes = (gpus: readonly GpuDevice[]): number[] => gpus.map((g) => g.index);

describe('nvidia-smi output', () => {
  it('reads index, uuid, name, memory and driver per line; [N/A] memory is null', () => {
    const gpus = parseNvidiaSmiGpus(FOUR_GPUS);
    expect(gpus[0]).toEqual({
      index: 0,
      uuid: 'GPU-1a2b3c4d-0000-1111-2222-333344445555',
      name: 'NVIDIA H100 80GB HBM3',
      memoryBytes: 81559 * 1024 * 1024,
      driver: '550.54.15',
    });
    expect(indexes(gpus)).toEqual([0, 1, 2, 3]);
    expect(gpus[3]?.memoryBytes).toBeNull();
    expect(parseNvidiaSmiGpus('0, GPU-x, Tesla V100, PCIe, 16384, 470.1')[0]?.name).toBe('Tesla V100, PCIe');
    expect(parseNvidiaSmiGpus('\n')).toEqual([]);
  });

  it('refuses output that is not the query it asked for, quoting the line', () => {
    expect(() => parseNvidiaSmiGpus('GPU 0: NVIDIA H200 (UUID: GPU-aaaa)')).toThrow(
      /printed 'GPU 0: NVIDIA H200 \(UUID: GPU-aaaa\)', not index, uuid, name, memory, driver/,
    );
  });
});

describe('CUDA_VISIBLE_DEVICES restricts the GPUs, as CUDA reads it', () => {
  const all = parseNvidiaSmiGpus(FOUR_GPUS);

  it('unset: every GPU; indexes: those, in the order given', () => {
    expect(indexes(visibleGpus(all, undefined))).toEqual([0, 1, 2, 3]);
    expect(indexes(visibleGpus(all, '2,0'))).toEqual([2, 0]);
    expect(indexes(visibleGpus(all, ' 3 , 1 '))).toEqual([3, 1]);
  });

  it('takes GPU UUIDs, whole or a unique prefix', () => {
    expect(indexes(visibleGpus(all, 'GPU-5e6f7a8b-0000-1111-2222-333344445555,GPU-1a2b'))).toEqual([1, 0]);
    // GPU-9c0d is the prefix of two UUIDs: it names no one GPU and ends the list there.
    expect(indexes(visibleGpus(all, '1,GPU-9c0d,0'))).toEqual([1]);
  });

  it('empty or -1 leaves none; the first entry that names no GPU ends the list', () => {
    expect(visibleGpus(all, '')).toEqual([]);
    expect(visibleGpus(all, '-1')).toEqual([]);
    expect(indexes(visibleGpus(all, '0,7,1'))).toEqual([0]);
    expect(indexes(visibleGpus(all, '1,-1,2'))).toEqual([1]);
    expect(indexes(visibleGpus(all, '1,1,2'))).toEqual([1, 2]);
  });
});

describe('pinning a worker', () => {
  const all = parseNvidiaSmiGpus(FOUR_GPUS);

  it('gives worker i the i-th visible GPU (round robin), by PCI-ordered index', () => {
    const visible = visibleGpus(all, '3,1');
    expect([0, 1, 2].map((i) => gpuPinningEnv(visible, i))).toEqual([
      { CUDA_VISIBLE_DEVICES: '3', CUDA_DEVICE_ORDER: 'PCI_BUS_ID' },
      { CUDA_VISIBLE_DEVICES: '1', CUDA_DEVICE_ORDER: 'PCI_BUS_ID' },
      { CUDA_VISIBLE_DEVICES: '3', CUDA_DEVICE_ORDER: 'PCI_BUS_ID' },
    ]);
  });

  it('sets nothing without a visible GPU', () => {
    expect(gpuPinningEnv([], 0)).toEqual({});
    expect(gpuPinningEnv(visibleGpus(all, '-1'), 2)).toEqual({});
  });
});

describe('asking nvidia-smi', () => {
  const savedPath = process.env.PATH;
  let fakeBin: string | undefined;
  afterEach(async () => {
    process.env.PATH = savedPath;
    if (fakeBin) await rm(fakeBin, { recursive: true, force: true });
    fakeBin = undefined;
  });

  it('lists what nvidia-smi prints and applies the given CUDA_VISIBLE_DEVICES', async () => {
    fakeBin = await mkdtemp(join(tmpdir(), 'fake-nvidia-smi-'));
    const script = join(fakeBin, 'nvidia-smi');
    await writeFile(script, `#!/bin/sh\ncat <<'EOF'\n${FOUR_GPUS}EOF\n`);
    await chmod(script, 0o755);
    process.env.PATH = `${fakeBin}${delimiter}${savedPath ?? ''}`;
    expect(indexes(listGpus())).toEqual([0, 1, 2, 3]);
    expect(indexes(discoverGpus({ CUDA_VISIBLE_DEVICES: '2' }))).toEqual([2]);
    expect(discoverGpus({ CUDA_VISIBLE_DEVICES: '' })).toEqual([]);
  });

  it('finds none without nvidia-smi, or when it fails (no driver)', async () => {
    process.env.PATH = '/nonexistent';
    expect(listGpus()).toEqual([]);
    fakeBin = await mkdtemp(join(tmpdir(), 'fake-nvidia-smi-'));
    const script = join(fakeBin, 'nvidia-smi');
    await writeFile(script, '#!/bin/sh\necho "NVIDIA-SMI has failed" >&2\nexit 9\n');
    await chmod(script, 0o755);
    process.env.PATH = fakeBin;
    expect(discoverGpus({})).toEqual([]);
  });
});
