// The unit of work the data-parallel trainer hands a rank, validated once at the edge.

/** Channels-last: `image` is [batch, D, H, W, inChannels], `label` is [batch, D, H, W] class indices. */
export interface MicroBatch {
  readonly image: Float32Array;
  readonly label: Uint8Array;
  readonly batch: number;
  /** Spatial shape [D, H, W]; each must be divisible by 4 (two stride-2 downsamplings). */
  readonly shape: readonly [number, number, number];
}

/** Which micro-batch of which step: keys the dropout masks and the metric record. */
export interface StepKey {
  readonly seed: number | string;
  readonly epoch: number;
  /** The optimiser step (= global batch index within the epoch for metric records). */
  readonly step: number;
  /** Index k of the micro-batch within the step (0 ≤ k < K). */
  readonly microBatch: number;
}

function nonNegativeInteger(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`${what} must be a non-negative integer, got ${String(value)}`);
  return value;
}

export function validateStepKey(key: StepKey, source = 'key'): StepKey {
  if (typeof key.seed === 'number') nonNegativeInteger(key.seed, `${source}.seed`);
  else if (typeof key.seed !== 'string') throw new TypeError(`${source}.seed must be an integer or a string`);
  nonNegativeInteger(key.epoch, `${source}.epoch`);
  nonNegativeInteger(key.step, `${source}.step`);
  nonNegativeInteger(key.microBatch, `${source}.microBatch`);
  return key;
}

/** Checks sizes and spatial dims; `label` is optional for inference-only inputs. */
export function validateVolumeShape(
  shape: readonly number[],
  batch: number,
  source: string,
): readonly [number, number, number] {
  if (!Number.isSafeInteger(batch) || batch < 1)
    throw new RangeError(`${source}.batch must be a positive integer, got ${batch}`);
  if (shape.length !== 3)
    throw new RangeError(`${source}.shape must be [D, H, W], got [${shape.join(', ')}]`);
  for (const [i, d] of shape.entries()) {
    if (!Number.isSafeInteger(d) || d < 4 || d % 4 !== 0)
      throw new RangeError(
        `${source}.shape[${i}] = ${d}: every spatial dim must be a positive multiple of 4 (two stride-2 downsamplings)`,
      );
  }
  return [shape[0] as number, shape[1] as number, shape[2] as number];
}

export function validateMicroBatch(
  mb: MicroBatch,
  inChannels: number,
  classes: number,
  source = 'microBatch',
): void {
  const [d, h, w] = validateVolumeShape(mb.shape, mb.batch, source);
  const voxels = mb.batch * d * h * w;
  if (!(mb.image instanceof Float32Array)) throw new TypeError(`${source}.image must be a Float32Array`);
  if (!(mb.label instanceof Uint8Array)) throw new TypeError(`${source}.label must be a Uint8Array`);
  if (mb.image.length !== voxels * inChannels)
    throw new RangeError(
      `${source}.image has ${mb.image.length} values; expected batch ${mb.batch} × ${d}×${h}×${w} × ${inChannels} channel(s) = ${voxels * inChannels}`,
    );
  if (mb.label.length !== voxels)
    throw new RangeError(
      `${source}.label has ${mb.label.length} values; expected batch ${mb.batch} × ${d}×${h}×${w} = ${voxels}`,
    );
  for (let i = 0; i < voxels; i++) {
    if ((mb.label[i] as number) >= classes)
      throw new RangeError(`${source}.label[${i}] = ${mb.label[i]} is not a class index below ${classes}`);
  }
  for (let i = 0; i < mb.image.length; i++) {
    if (!Number.isFinite(mb.image[i]))
      throw new RangeError(`${source}.image[${i}] is not finite (${mb.image[i]})`);
  }
}
