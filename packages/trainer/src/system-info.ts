import { cpus, hostname, release, totalmem, type } from 'node:os';
import type { SystemInfo } from '@lits-ddp/protocol';
import { discoverGpus } from './gpu-devices.js';

export function collectSystemInfo(tfjsVersion: string): SystemInfo {
  const cpuList = cpus();
  return {
    hostname: hostname(),
    os: `${type()} ${release()}`,
    cpuModel: cpuList[0]?.model ?? 'unknown',
    cpuCount: cpuList.length,
    memoryBytes: totalmem(),
    node: process.version,
    tfjs: tfjsVersion,
    // The GPUs this worker may use (CUDA_VISIBLE_DEVICES applied), as nvidia-smi names them.
    gpus: discoverGpus().map(({ name, memoryBytes, driver }) => ({ name, memoryBytes, driver })),
  };
}
