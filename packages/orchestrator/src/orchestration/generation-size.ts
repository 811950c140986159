import type { GenerationChange, ResolvedSpec } from '@lits-ddp/protocol';

/** Why the next generation starts, as the previous one ended (a failure, or growth at a checkpoint). */
export interface NextGeneration {
  reason: string;
  /** Growth: the size to grow to, taking whatever is free at once (no elastic wait). */
  growTo?: number;
}

/** What the lease of a generation asks for: the size it wants, the fewest it starts with, how long it waits for more. */
export interface GenerationLease {
  count: number;
  minimum: number;
  elasticWaitMs: number;
}

/**
 * The lease of the next generation of an elastic run. It wants the spec's `workers`, or the size it
 * last ran at if larger (a grown run that loses a worker wants its grown size back), never more
 * than `max-workers`; after `elastic-wait-s` it goes on with what is free, at least `min-workers`.
 */
export function generationLease(
  spec: ResolvedSpec,
  previousSize: number,
  next: NextGeneration | undefined,
): GenerationLease {
  const minimum = spec['min-workers'];
  if (next?.growTo !== undefined) return { count: next.growTo, minimum, elasticWaitMs: 0 };
  const count = Math.min(spec['max-workers'], Math.max(spec.workers, previousSize));
  return { count, minimum, elasticWaitMs: spec['elastic-wait-s'] * 1000 };
}

/** The change a generation of `size` workers makes, and its reason, for its `generation` event and tags. */
export function generationChange(
  spec: ResolvedSpec,
  previousSize: number,
  size: number,
  next: NextGeneration | undefined,
): { change: GenerationChange; reason: string } {
  const waited = `no more were free within elastic-wait-s (${spec['elastic-wait-s']} s)`;
  if (previousSize === 0) {
    return size < spec.workers
      ? { change: 'start', reason: `starts on ${size} of ${spec.workers} workers: ${waited}` }
      : { change: 'start', reason: 'the run starts' };
  }
  const why = next?.reason ?? 'the coordinator took the run over';
  if (size < previousSize)
    return { change: 'shrink', reason: `${why}; goes on with ${size} of ${previousSize} workers: ${waited}` };
  if (size > previousSize) return { change: 'grow', reason: `${why}; ${previousSize} → ${size} workers` };
  return { change: 'restart', reason: why };
}

/** The MLflow tags of a generation: the current world size, and one line per generation. */
export function generationTags(
  generation: number,
  size: number,
  change: GenerationChange,
  reason: string,
): Record<string, string> {
  // MLflow keeps tag values up to 5000 characters (older servers: 250): the line is cut well short of that.
  const line = `${size} worker${size === 1 ? '' : 's'}, ${change}: ${reason}`.slice(0, 240);
  return { 'lits.world_size': String(size), [`lits.generation.${generation}`]: line };
}
