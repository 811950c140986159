// How the flat parameter vector maps onto the tensors the graph uses. One tensor per parameter, except conv
// kernels that follow a concatenation: those are one tensor per concatenated input (input-channel slices of the
// kernel), so the graph never concatenates or splits (both are slow on the tfjs cpu backend). The flat layout,
// gradients, checkpoints and hashes always use the whole kernel.
import type { ParameterSpec, UNetLayout } from './architecture.js';

export interface TensorSlot {
  /** The parameter name, with `#g` for input-channel group g of a split kernel. */
  readonly name: string;
  readonly spec: ParameterSpec;
  readonly shape: readonly number[];
  /** Input-channel range [from, to) of the kernel (whole kernel when absent). */
  readonly channels?: readonly [number, number];
}

const slotCache = new WeakMap<UNetLayout, readonly TensorSlot[]>();

export function tensorSlots(layout: UNetLayout): readonly TensorSlot[] {
  const cached = slotCache.get(layout);
  if (cached) return cached;
  const slots: TensorSlot[] = [];
  for (const spec of layout.parameters) {
    if (!spec.inputGroups) {
      slots.push({ name: spec.name, spec, shape: spec.shape });
      continue;
    }
    let from = 0;
    spec.inputGroups.forEach((c, g) => {
      const [k0, k1, k2, , cout] = spec.shape as [number, number, number, number, number];
      slots.push({
        name: `${spec.name}#${g}`,
        spec,
        shape: [k0, k1, k2, c, cout],
        channels: [from, from + c],
      });
      from += c;
    });
  }
  slotCache.set(layout, slots);
  return slots;
}

/** Kernel geometry of a split slot: taps (k³), input channels of the whole kernel, output channels. */
function geometry(slot: TensorSlot): { taps: number; cin: number; cout: number } {
  const [k0, k1, k2, cin, cout] = slot.spec.shape as [number, number, number, number, number];
  return { taps: k0 * k1 * k2, cin, cout };
}

/** The slot's values out of the flat vector. */
export function readSlot(slot: TensorSlot, flat: Float32Array): Float32Array {
  const { offset, size } = slot.spec;
  if (!slot.channels) return flat.slice(offset, offset + size);
  const { taps, cin, cout } = geometry(slot);
  const [from, to] = slot.channels;
  const rows = to - from;
  const out = new Float32Array(taps * rows * cout);
  for (let t = 0; t < taps; t++) {
    const src = offset + (t * cin + from) * cout;
    out.set(flat.subarray(src, src + rows * cout), t * rows * cout);
  }
  return out;
}

/** Writes the slot's values (e.g. its gradient) into the flat vector. */
export function writeSlot(
  slot: TensorSlot,
  values: Float32Array | Int32Array | Uint8Array,
  flat: Float32Array,
): void {
  const { offset } = slot.spec;
  if (!slot.channels) {
    flat.set(values, offset);
    return;
  }
  const { taps, cin, cout } = geometry(slot);
  const [from, to] = slot.channels;
  const rows = to - from;
  for (let t = 0; t < taps; t++)
    flat.set(values.subarray(t * rows * cout, (t + 1) * rows * cout), offset + (t * cin + from) * cout);
}
