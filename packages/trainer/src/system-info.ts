import { execFileSync } from 'node:child_process';
import { cpus, hostname, release, totalmem, type } from 'node:os';
import type { SystemInfo } from '@lits-ddp/protocol';

/** GPUs as nvidia-smi sees them (respecting CUDA_VISIBLE_DEVICES); empty without a driver. */
function nvidiaGpus(): SystemInfo['gpus'] {
  try {
    const out = execFileSync(
      'nvidia-smi',
      ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits'],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 5000,
      },
    ).toString();
    const all = out
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((line) => {
        const [name = '', mem = '', driver = ''] = line.split(',').map((s) => s.trim());
        return { name, memoryBytes: Number(mem) * 1024 * 1024, driver };
      });
    const visible = process.env.CUDA_VISIBLE_DEVICES;
    if (visible === undefined || visible === '') return all;
    return visible.split(',').flatMap((i) => (all[Number(i)] ? [all[Number(i)]!] : []));
  } catch {
    return [];
  }
}

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
    gpus: nvidiaGpus(),
  };
}
