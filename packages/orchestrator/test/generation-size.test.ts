import { describe, expect, it } from 'vitest';
import { resolveSpec, type ExperimentSpecInput, type ResolvedSpec } from '@lits-ddp/protocol';
import { generationChange, generationLease, generationTags } from '../src/orchestration/generation-size.js';

function spec(input: ExperimentSpecInput): ResolvedSpec {
  const r = resolveSpec({ 'global-batch-size': 8, 'elastic-wait-s': 5, ...input });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

describe('the size of an elastic run’s next generation', () => {
  it('wants workers (or the size it last ran at, up to max-workers), and after elastic-wait-s takes min-workers', () => {
    const elastic = spec({ workers: 4, 'min-workers': 2, 'max-workers': 6 });
    expect(generationLease(elastic, 0, undefined)).toEqual({ count: 4, minimum: 2, elasticWaitMs: 5000 });
    // A run that had grown to 6 and lost a worker wants its 6 back first.
    expect(generationLease(elastic, 6, { reason: 'rank 5 lost' })).toEqual({
      count: 6,
      minimum: 2,
      elasticWaitMs: 5000,
    });
    // Growth takes what is free at once.
    expect(generationLease(elastic, 4, { reason: 'idle', growTo: 6 })).toEqual({
      count: 6,
      minimum: 2,
      elasticWaitMs: 0,
    });
    // Not elastic: exactly workers, as before.
    expect(generationLease(spec({ workers: 2 }), 2, { reason: 'x' })).toEqual({
      count: 2,
      minimum: 2,
      elasticWaitMs: 5000,
    });
  });

  it('names the change by the sizes before and after, with the reason', () => {
    const s = spec({ workers: 4, 'min-workers': 2 });
    expect(generationChange(s, 0, 4, undefined)).toEqual({ change: 'start', reason: 'the run starts' });
    expect(generationChange(s, 0, 3, undefined).reason).toBe(
      'starts on 3 of 4 workers: no more were free within elastic-wait-s (5 s)',
    );
    const lost = { reason: 'rank 3 (w3) lost its heartbeat' };
    expect(generationChange(s, 4, 4, lost)).toEqual({ change: 'restart', reason: lost.reason });
    expect(generationChange(s, 4, 3, lost)).toEqual({
      change: 'shrink',
      reason:
        'rank 3 (w3) lost its heartbeat; goes on with 3 of 4 workers: no more were free within elastic-wait-s (5 s)',
    });
    expect(generationChange(s, 3, 4, { reason: 'idle', growTo: 4 })).toEqual({
      change: 'grow',
      reason: 'idle; 3 → 4 workers',
    });
  });

  it('tags the current world size and one line per generation, short enough for any MLflow', () => {
    const tags = generationTags(3, 3, 'shrink', 'x'.repeat(1000));
    expect(tags['lits.world_size']).toBe('3');
    expect(tags['lits.generation.3']).toMatch(/^3 workers, shrink: x+$/);
    expect(tags['lits.generation.3']?.length).toBeLessThanOrEqual(250);
  });
});
