// Analytic FLOP counts of UNet3D (convolutions only; a multiply-add counts as 2 FLOPs).
import { unetLayout, type UNetArchitecture } from './architecture.js';

export interface FlopCount {
  /** Forward pass of one sample. */
  readonly forwardPerSample: number;
  /** Forward + backward (input and filter gradients, each as costly as the forward) of the whole batch. */
  readonly trainStep: number;
}

/** Conv FLOPs for a cube of edge `size` (the network's 3 resolution levels are size, size/2, size/4). */
export function unetFlops(architecture: UNetArchitecture, size: number, batch = 1): FlopCount {
  if (!Number.isSafeInteger(size) || size < 4 || size % 4 !== 0)
    throw new RangeError(`FLOP count needs a cube edge that is a positive multiple of 4, got ${size}`);
  const layout = unetLayout(architecture);
  const level: Record<string, number> = { inc: 0, down1: 1, down2: 2, mid: 2, up1: 1, up2: 0, outc: 0 };
  let forward = 0;
  for (const p of layout.parameters) {
    if (p.role !== 'weight') continue;
    const voxelsOut = (size / 2 ** (level[p.block] as number)) ** 3;
    forward += 2 * p.size * voxelsOut; // p.size = k³·in·out
  }
  return { forwardPerSample: forward, trainStep: 3 * forward * batch };
}
