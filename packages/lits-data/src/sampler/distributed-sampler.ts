import { CounterRng, type PurposePart } from '@lits-ddp/counter-rng';

export interface DistributedSamplerOptions {
  /** Data set size. */
  size: number;
  rank: number;
  worldSize: number;
  seed: PurposePart;
  epoch: number;
  /** Default true. */
  shuffle?: boolean;
  /** Default false: pad by wrap-around so every rank gets the same count. */
  dropLast?: boolean;
}

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min)
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${value}`);
}

/** The epoch's order of 0..size-1: identical on every rank, new each epoch (counter-rng keyed ('shuffle', epoch)). */
export function epochOrder(size: number, seed: PurposePart, epoch: number, shuffle = true): Uint32Array {
  checkInteger('size', size, 0);
  checkInteger('epoch', epoch, 0);
  if (!shuffle) return Uint32Array.from({ length: size }, (_, i) => i);
  return CounterRng.derive(seed, 'shuffle', epoch).permutation(size);
}

/**
 * PyTorch `DistributedSampler` semantics with our permutation: with dropLast the tail that does not fill a round is
 * dropped; without it the order is padded by wrap-around to a multiple of worldSize; rank r takes positions
 * r, r + N, r + 2N, …
 */
export function distributedSampler(options: DistributedSamplerOptions): number[] {
  const { size, rank, worldSize, seed, epoch } = options;
  checkInteger('worldSize', worldSize, 1);
  checkInteger('rank', rank, 0);
  if (rank >= worldSize) throw new RangeError(`rank ${rank} is outside worldSize ${worldSize}`);
  const order = epochOrder(size, seed, epoch, options.shuffle ?? true);
  if (size === 0) return [];
  const dropLast = options.dropLast ?? false;
  const perRank =
    dropLast && size % worldSize !== 0
      ? Math.ceil((size - worldSize) / worldSize)
      : Math.ceil(size / worldSize);
  const total = perRank * worldSize;
  const out: number[] = [];
  for (let p = rank; p < total; p += worldSize) out.push(order[p % size]!);
  return out;
}
