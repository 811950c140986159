// The worker's engine checks before training: the plan's engine, and a resume's checkpoint identity.
import { describe, expect, it } from 'vitest';
import type { RunPlan } from '@lits-ddp/protocol';
import { loadEngine, type EngineIdentity } from '@lits-ddp/unet';
import {
  checkpointEngineProblem,
  planEngineMismatch,
  rankEngineProblem,
} from '../src/training/engine-check.js';

const engine = await loadEngine({ engine: 'cpu' });
const planFor = (e: RunPlan['engine'] | undefined) => ({ engine: e }) as unknown as RunPlan;
const onNative: EngineIdentity = {
  name: 'node',
  version: '4.22.0',
  libtensorflow: '2.18.1',
  threads: { intraOp: 1, interOp: 1 },
  onednn: true,
  cpuIsa: 'x86_64 avx512_core_amx',
};

describe('engine checks before training', () => {
  it('takes a plan for its own engine, refuses another one naming both, and passes a plan without one', () => {
    expect(planEngineMismatch(planFor({ name: 'cpu', threads: null }), engine)).toBeUndefined();
    expect(planEngineMismatch(planFor({ name: 'node', threads: { intraOp: 2, interOp: 1 } }), engine)).toBe(
      "the run's engine is node with 2 intra-op threads, 1 inter-op thread; this worker runs engine cpu (@tensorflow/tfjs 4.22.0, backend cpu)",
    );
    expect(planEngineMismatch(planFor(undefined), engine)).toBeUndefined();
  });

  it('a resume on another engine identity: refused in deterministic mode, a warning otherwise', () => {
    expect(checkpointEngineProblem(null, engine, 'deterministic', '/ck')).toEqual({});
    const same: EngineIdentity = { name: 'cpu', version: engine.version, libtensorflow: null, threads: null };
    expect(checkpointEngineProblem(same, engine, 'deterministic', '/ck')).toEqual({});
    const refused = checkpointEngineProblem(onNative, engine, 'deterministic', '/ck');
    expect(refused.error).toBe(
      '/ck was trained on another engine identity (node (tfjs 4.22.0, libtensorflow 2.18.1, 1 intra-op thread, ' +
        '1 inter-op thread, oneDNN on, x86_64 avx512_core_amx) vs cpu (tfjs 4.22.0)): a deterministic run resumes ' +
        'only on the same engine, versions, thread counts (lits worker --threads, spec engine-threads) and machine class',
    );
    expect(checkpointEngineProblem(onNative, engine, 'seed', '/ck')).toEqual({
      warning: expect.stringMatching(
        /^\/ck was trained on another engine identity .*bits will differ/,
      ) as string,
    });
  });

  it('ranks on other kernels are refused in every mode; on another machine class only in deterministic mode', () => {
    expect(rankEngineProblem([onNative, { ...onNative }], 'deterministic')).toEqual({});
    const twoThreads = { ...onNative, threads: { intraOp: 2, interOp: 1 } };
    expect(rankEngineProblem([onNative, twoThreads], 'random').error).toMatch(
      /^ranks run different engines: 0=node \(.*1 intra-op thread.*\); 1=node \(.*2 intra-op threads/,
    );
    const avx2 = { ...onNative, cpuIsa: 'x86_64 avx2' };
    expect(rankEngineProblem([onNative, avx2], 'deterministic').error).toMatch(
      /^ranks run on different machine classes: .*x86_64 avx2\); a deterministic run needs one class/,
    );
    expect(rankEngineProblem([onNative, avx2], 'seed')).toEqual({
      warning: expect.stringMatching(/their gradients round differently$/) as string,
    });
  });
});
