// Analytic FLOP counts of UNet3D (convolutions only; a multiply-add counts as 2 FLOPs).
import { validateArchitecture, type UNetArchitecture } from './architecture.js';
import { unetTopology } from './topology.js';

export interface FlopCount {
  /** Forward pass of one sample. */
  readonly forwardPerSample: number;
  /** Forward + backward (input and filter gradients, each as costly as the forward) of the whole batch. */
  readonly trainStep: number;
}

/** Conv FLOPs for a cube of edge `size` (a conv at resolution level l outputs (size/2^l)³ voxels). */
export function unetFlops(architecture: UNetArchitecture, size: number, batch = 1): FlopCount {
  const topology = unetTopology(validateArchitecture(architecture));
  const multiple = 2 ** topology.depth;
  if (!Number.isSafeInteger(size) || size < multiple || size % multiple !== 0)
    throw new RangeError(
      `FLOP count needs a cube edge that is a positive multiple of ${multiple}, got ${size}`,
    );
  let forward = 0;
  for (const layer of topology.layers) {
    if (layer.kind !== 'conv') continue;
    const cin = layer.inputs.reduce((a, b) => a + b, 0);
    const voxelsOut = (size / 2 ** layer.level) ** 3;
    forward += 2 * layer.kernel ** 3 * cin * layer.out * voxelsOut;
  }
  return { forwardPerSample: forward, trainStep: 3 * forward * batch };
}
