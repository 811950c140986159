// What loading native TensorFlow needs from the host it runs on: the Node API tfjs-node expects, and (for the gpu
// engine) an NVIDIA driver.
import { existsSync } from 'node:fs';
import util from 'node:util';

/** Whether this machine has the NVIDIA kernel driver loaded (what every CUDA device needs). */
export function nvidiaDriverPresent(): boolean {
  return existsSync('/proc/driver/nvidia/version');
}

/**
 * tfjs-node 4.22 (and -gpu) calls util.isNullOrUndefined for every op with a type attribute (conv3d, cast, …);
 * Node 23 removed it. Restored with its documented meaning before a native package loads, so the engine runs on
 * Node 24 LTS as on 20 and 22.
 */
export function restoreUtilIsNullOrUndefined(): void {
  const legacy = util as unknown as Record<string, unknown>;
  legacy['isNullOrUndefined'] ??= (value: unknown): boolean => value === null || value === undefined;
}
