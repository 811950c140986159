// A run's ranks must compute with one engine identity: a native engine's bits depend on its thread pools and
// libtensorflow, so mixing them would break the same-bits promise of seed and deterministic modes silently.
import type { DeterminismMode, RunPlan } from '@lits-ddp/protocol';
import {
  engineIdentity,
  engineIdentityDifference,
  formatEngineIdentity,
  formatThreads,
  type Engine,
  type EngineIdentity,
} from '@lits-ddp/unet';

/** Why this worker must not run the plan's engine, or undefined when it may. */
export function planEngineMismatch(plan: RunPlan, engine: Engine): string | undefined {
  // Plans written by a coordinator older than RunPlan.engine name none; the ranks' all-gather still checks.
  const want = plan.engine as RunPlan['engine'] | undefined;
  if (!want) return undefined;
  const threadsDiffer =
    want.threads?.intraOp !== engine.threads?.intraOp || want.threads?.interOp !== engine.threads?.interOp;
  if (want.name === engine.name && !threadsDiffer) return undefined;
  const wanted = want.threads ? `${want.name} with ${formatThreads(want.threads)}` : want.name;
  return `the run's engine is ${wanted}; this worker runs ${engine.description}`;
}

/** What every rank all-gathers before training: equal on every rank, or training is refused. */
export function engineKey(engine: Engine): string {
  return formatEngineIdentity(engineIdentity(engine));
}

/**
 * A resume on another engine identity than the checkpoint's: refused in deterministic mode (its bits would not
 * continue the interrupted run's), a warning in the other modes. Checkpoints without one pass.
 */
export function checkpointEngineProblem(
  recorded: EngineIdentity | null,
  engine: Engine,
  mode: DeterminismMode,
  path: string,
): { error?: string; warning?: string } {
  if (!recorded) return {};
  const difference = engineIdentityDifference(recorded, engineIdentity(engine));
  if (!difference) return {};
  const what = `${path} was trained on another engine identity (${difference})`;
  return mode === 'deterministic'
    ? {
        error: `${what}: a deterministic run resumes only on the same engine and thread counts (lits worker --threads, spec engine-threads)`,
      }
    : { warning: `${what}: the resumed run's bits will differ from an uninterrupted run's` };
}
