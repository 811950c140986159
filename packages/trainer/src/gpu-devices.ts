// GPU discovery, one rule for the launcher and the worker: nvidia-smi lists every GPU (it ignores
// CUDA_VISIBLE_DEVICES); an inherited CUDA_VISIBLE_DEVICES restricts that list as CUDA would; the launcher pins
// worker i to the i-th visible GPU. nvidia-smi numbers GPUs in PCI bus order, CUDA by default fastest first, so a
// pinned worker also gets CUDA_DEVICE_ORDER=PCI_BUS_ID: the index it is given means the same GPU to both. (An
// inherited CUDA_VISIBLE_DEVICES index is read in PCI bus order too; where all GPUs are one model, CUDA's default
// order is the same.)
import { execFileSync } from 'node:child_process';
import { GpuDiscoveryError } from './errors.js';

export interface GpuDevice {
  /** nvidia-smi's index (PCI bus order); CUDA's index too under CUDA_DEVICE_ORDER=PCI_BUS_ID. */
  readonly index: number;
  /** e.g. `GPU-5d1f…`; CUDA_VISIBLE_DEVICES may name a GPU by it. */
  readonly uuid: string;
  readonly name: string;
  /** Null where nvidia-smi prints [N/A]. */
  readonly memoryBytes: number | null;
  readonly driver: string;
}

/** The query whose output parseNvidiaSmiGpus reads. */
export const NVIDIA_SMI_QUERY: readonly string[] = Object.freeze([
  '--query-gpu=index,uuid,name,memory.total,driver_version',
  '--format=csv,noheader,nounits',
]);

/** Parses NVIDIA_SMI_QUERY's output, one GPU a line (`0, GPU-…, NVIDIA H100 80GB HBM3, 81559, 550.54.15`). */
export function parseNvidiaSmiGpus(csv: string): GpuDevice[] {
  return csv
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = line.split(',').map((f) => f.trim());
      const index = Number(fields[0]);
      if (fields.length < 5 || !/^\d+$/.test(fields[0] ?? '') || !Number.isSafeInteger(index))
        throw new GpuDiscoveryError(
          `nvidia-smi ${NVIDIA_SMI_QUERY.join(' ')} printed '${line}', not index, uuid, name, memory, driver`,
        );
      // A GPU name could hold a comma; index and uuid lead and memory and driver end every line.
      const driver = fields.at(-1) as string;
      const memoryMiB = Number(fields.at(-2));
      return {
        index,
        uuid: fields[1] as string,
        name: fields.slice(2, -2).join(', '),
        memoryBytes: fields.at(-2) !== '' && Number.isFinite(memoryMiB) ? memoryMiB * 1024 * 1024 : null,
        driver,
      };
    });
}

/**
 * The GPUs of `all` that CUDA_VISIBLE_DEVICES = `value` leaves visible, in its order. Unset: all. Entries are
 * nvidia-smi indexes or GPU UUIDs (a unique prefix, as CUDA takes them); like CUDA, the first entry that names no
 * GPU ends the list, so an empty value or "-1" leaves none. A GPU named twice is counted once, so that two workers
 * are never pinned to it.
 */
export function visibleGpus(all: readonly GpuDevice[], value: string | undefined): GpuDevice[] {
  if (value === undefined) return [...all];
  const visible: GpuDevice[] = [];
  for (const entry of value.split(',').map((e) => e.trim())) {
    const matches = /^\d+$/.test(entry)
      ? all.filter((g) => g.index === Number(entry))
      : entry.startsWith('GPU-')
        ? all.filter((g) => g.uuid.startsWith(entry))
        : [];
    const gpu = matches.length === 1 ? matches[0] : undefined;
    if (!gpu) break;
    if (!visible.includes(gpu)) visible.push(gpu);
  }
  return visible;
}

/**
 * Every GPU nvidia-smi lists; none without nvidia-smi, or when it fails (no driver loaded, no device): either way
 * there is no GPU a worker could use.
 */
export function listGpus(): GpuDevice[] {
  let csv: string;
  try {
    csv = execFileSync('nvidia-smi', NVIDIA_SMI_QUERY, {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).toString();
  } catch {
    return [];
  }
  return parseNvidiaSmiGpus(csv);
}

/** The GPUs this process may use: nvidia-smi's list restricted by `env`'s CUDA_VISIBLE_DEVICES. */
export function discoverGpus(env: NodeJS.ProcessEnv = process.env): GpuDevice[] {
  return visibleGpus(listGpus(), env.CUDA_VISIBLE_DEVICES);
}

/**
 * The variables that pin worker `worker` to one of `visible` (round robin when workers outnumber GPUs); none
 * without a visible GPU, so the worker inherits the launcher's CUDA_VISIBLE_DEVICES.
 */
export function gpuPinningEnv(visible: readonly GpuDevice[], worker: number): Record<string, string> {
  const gpu = visible[worker % visible.length];
  if (!gpu) return {};
  return { CUDA_VISIBLE_DEVICES: String(gpu.index), CUDA_DEVICE_ORDER: 'PCI_BUS_ID' };
}
