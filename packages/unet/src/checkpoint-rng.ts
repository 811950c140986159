// The random-stream identity a checkpoint carries. Every draw of a training run comes from counter-rng streams keyed
// by (seed, purpose, epoch, step, …), so the seeds plus the counters of the next step are the whole RNG state: a
// resumed run that keys its draws from these values draws exactly what the uninterrupted run drew.

export interface CheckpointRng {
  /** `StepKey.seed` of the training steps: dropout masks are streams (seed, 'dropout', epoch, step, microBatch, layer). */
  readonly seed: number | string;
  /** Seed of the data order (shuffles, micro-batch plans). A trainer without its own data seed repeats `seed`. */
  readonly dataSeed: number | string;
  /** Epoch of the next step to run: the epoch counter of its dropout and shuffle draws. */
  readonly epoch: number;
  /** Step (within `epoch`) of the next step to run: the step counter of its draws. */
  readonly step: number;
}

const RNG_FIELDS = ['seed', 'dataSeed', 'epoch', 'step'] as const;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
// Seeds are counter-rng purpose parts: 7 and '7' key different streams, so the type is kept as given.
const isSeed = (v: unknown): v is number | string => typeof v === 'string' || isCount(v);

/** Checks a CheckpointRng and returns a plain copy; errors name `source`'s field and the reason. */
export function validateCheckpointRng(value: unknown, source = 'rng'): CheckpointRng {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TypeError(`${source} must be an object { seed, dataSeed, epoch, step }`);
  const r = value as Record<string, unknown>;
  const unknown = Object.keys(r).filter((k) => !(RNG_FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new TypeError(
      `${source} has unknown field(s) ${unknown.join(', ')}; expected ${RNG_FIELDS.join(', ')}`,
    );
  const { seed, dataSeed, epoch, step } = r;
  if (!isSeed(seed))
    throw new TypeError(
      `${source}.seed must be a non-negative integer or a string, got ${JSON.stringify(seed)}`,
    );
  if (!isSeed(dataSeed))
    throw new TypeError(
      `${source}.dataSeed must be a non-negative integer or a string, got ${JSON.stringify(dataSeed)}`,
    );
  if (!isCount(epoch))
    throw new RangeError(`${source}.epoch must be a non-negative integer, got ${JSON.stringify(epoch)}`);
  if (!isCount(step))
    throw new RangeError(`${source}.step must be a non-negative integer, got ${JSON.stringify(step)}`);
  return { seed, dataSeed, epoch, step };
}
