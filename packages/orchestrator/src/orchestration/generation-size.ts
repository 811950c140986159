import type { GenerationChange, ResolvedSpec, RunEngine } from '@lits-ddp/protocol';
import { GenerationRegroup } from '../errors.js';
import { freeWorkers } from './worker-lease.js';
import type { WorkerPool } from './worker-pool.js';

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

export interface GrowthCheck {
  pool: WorkerPool;
  /** The run's engine: only idle workers running it count. */
  engine: RunEngine | undefined;
  preferredWorkers: string[];
  exclusiveWorkers: boolean;
  maxWorkers: number;
  /** The running generation's world size. */
  size: number;
  /** The epoch whose `last` checkpoint was just written. */
  epoch: number;
  /** False while other experiments wait for workers: growth takes none of theirs. */
  mayGrow?: () => Promise<boolean>;
}

/**
 * At a checkpoint of a run below max-workers with idle workers of its engine free: the regroup that grows it
 * (the supervisor ends the generation and resumes the checkpoint on more workers), else undefined.
 */
export async function growthAtCheckpoint(c: GrowthCheck): Promise<GenerationRegroup | undefined> {
  if (c.size >= c.maxWorkers) return undefined;
  const { free } = await freeWorkers(c.pool, c.engine, c.preferredWorkers, c.exclusiveWorkers);
  if (free === 0 || (c.mayGrow && !(await c.mayGrow()))) return undefined;
  const target = Math.min(c.maxWorkers, c.size + free);
  return new GenerationRegroup(
    `${free} idle worker${free === 1 ? '' : 's'} free at the checkpoint of epoch ${c.epoch}: growing to ${target}`,
    target,
  );
}
