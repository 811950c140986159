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
  const want = plan.engine;
  if (!want) return undefined;
  const threadsDiffer =
    want.threads?.intraOp !== engine.threads?.intraOp || want.threads?.interOp !== engine.threads?.interOp;
  if (want.name === engine.name && !threadsDiffer) return undefined;
  const wanted = want.threads ? `${want.name} with ${formatThreads(want.threads)}` : want.name;
  return `the run's engine is ${wanted}; this worker runs ${engine.description}`;
}

/**
 * The ranks' engine identities, by rank (each all-gathers its own before training): another engine, version or thread count is refused in every mode
 * (other kernels); another machine class (oneDNN, instruction set) only in deterministic mode, a warning elsewhere.
 */
export function rankEngineProblem(
  identities: readonly EngineIdentity[],
  mode: DeterminismMode,
): { error?: string; warning?: string } {
  const [first] = identities;
  if (!first) return {};
  const listed = () => identities.map((id, r) => `${r}=${formatEngineIdentity(id)}`).join('; ');
  const kernels = (id: EngineIdentity) =>
    engineIdentityDifference(
      { ...first, onednn: undefined, cpuIsa: undefined },
      { ...id, onednn: undefined, cpuIsa: undefined },
    );
  if (identities.some((id) => kernels(id) !== null))
    return { error: `ranks run different engines: ${listed()}` };
  if (identities.every((id) => engineIdentityDifference(first, id) === null)) return {};
  const what = `ranks run on different machine classes: ${listed()}`;
  return mode === 'deterministic'
    ? { error: `${what}; a deterministic run needs one class (its bits depend on it)` }
    : { warning: `${what}; their gradients round differently` };
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
        error: `${what}: a deterministic run resumes only on the same engine, versions, thread counts (lits worker --threads, spec engine-threads) and machine class`,
      }
    : { warning: `${what}: the resumed run's bits will differ from an uninterrupted run's` };
}
