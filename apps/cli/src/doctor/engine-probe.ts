// The engines, each loaded in a child process with the thread pools a worker would give it.
import { errorMessage } from '@lits-ddp/errors';
import { nativeEngineStatus } from '@lits-ddp/native-engine';
import { decodeJson, DEFAULT_ENGINE_THREADS, ENGINE_KINDS, type EngineKind } from '@lits-ddp/protocol';
import { ENGINE_PACKAGES, NATIVE_ENGINE_INSTALL_HINT, parseThreadCount } from '@lits-ddp/unet';
import { entryFile, lastLine, runNodeChild } from './child.js';
import { EngineProbeResult, notLoaded, probeLine } from './engine-probe-result.js';
import type { DoctorEngine, DoctorThreads } from './report-schema.js';

/** The pools `lits worker` loads a native engine with: --threads, else LITS_ENGINE_THREADS, else the default. */
export function workerThreads(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): DoctorThreads {
  const fromEnv = env.LITS_ENGINE_THREADS;
  if (flag !== undefined)
    return { intraOp: parseThreadCount(flag, '--threads'), interOp: 1, source: '--threads' };
  if (fromEnv)
    return {
      intraOp: parseThreadCount(fromEnv, 'LITS_ENGINE_THREADS'),
      interOp: 1,
      source: 'LITS_ENGINE_THREADS',
    };
  return { intraOp: DEFAULT_ENGINE_THREADS, interOp: 1, source: 'default' };
}

/** How to get the GPU engine: the native-engine route, which also lays the CUDA libraries beside libtensorflow. */
export const GPU_INSTALL_HINT = 'npm run lits -- engine install --gpu';

function hintFor(engine: EngineKind, probe: EngineProbeResult): string | null {
  if (engine === 'gpu') {
    if (!probe.loads) return `install it: ${GPU_INSTALL_HINT}`;
    return probe.gpuDevice === false
      ? 'it loads but TensorFlow found no GPU: see the driver and CUDA libraries below'
      : null;
  }
  if (probe.loads) return null;
  if (engine === 'node') {
    const status = nativeEngineStatus();
    const why = status.ready ? '' : ` (${status.reason ?? 'not built'})`;
    return `build it: ${NATIVE_ENGINE_INSTALL_HINT}${why}`;
  }
  return `reinstall the dependencies: npm ci (${ENGINE_PACKAGES.cpu} is part of the lockfile)`;
}

async function probeEngine(
  engine: EngineKind,
  threads: DoctorThreads,
  timeoutMs: number,
): Promise<DoctorEngine> {
  const started = Date.now();
  const outcome = await runNodeChild(
    entryFile('engine-probe-child'),
    [engine, String(threads.intraOp), String(threads.interOp)],
    {
      timeoutMs,
      // A probe beside a running worker must not take the whole GPU's memory, which TensorFlow does by default.
      env: { ...process.env, TF_FORCE_GPU_ALLOW_GROWTH: process.env.TF_FORCE_GPU_ALLOW_GROWTH ?? 'true' },
    },
  );
  let probe: EngineProbeResult;
  const line = probeLine(outcome.stdout);
  if (outcome.timedOut)
    probe = notLoaded(
      `did not load within ${timeoutMs / 1000} s (a first GPU load can compile CUDA kernels for minutes: try --timeout-s)`,
      true,
    );
  else if (line === undefined)
    probe = notLoaded(
      `the loading process ended ${outcome.signal ? `by ${outcome.signal}` : `with code ${outcome.code}`}: ${lastLine(outcome.stderr) ?? 'no message'}`,
      true,
    );
  else {
    try {
      probe = decodeJson(EngineProbeResult, line, `the ${engine} engine probe`);
    } catch (err) {
      probe = notLoaded(errorMessage(err), true);
    }
  }
  return {
    engine,
    package: ENGINE_PACKAGES[engine],
    ...probe,
    threads: probe.threads ? { ...probe.threads, source: threads.source } : null,
    hint: hintFor(engine, probe),
    ms: Date.now() - started,
  };
}

/** Every engine, in `auto`'s order of preference, probed at once (each in its own process). */
export function probeEngines(threads: DoctorThreads, timeoutMs: number): Promise<DoctorEngine[]> {
  return Promise.all(ENGINE_KINDS.map((engine) => probeEngine(engine, threads, timeoutMs)));
}
