// Runs every check at once and judges the result against the engine asked for.
import { ENGINE_KINDS, type EngineKind, type EngineName } from '@lits-ddp/protocol';
import { probeEngines } from './engine-probe.js';
import { checkCudaLibraries, checkDriver } from './gpu-driver.js';
import type { DoctorCuda, DoctorDriver, DoctorEngine, DoctorReport, DoctorThreads } from './report-schema.js';
import { checkRuntime } from './runtime.js';
import { checkMlflow, checkRedis, type configuredUrl } from './services.js';

export interface DoctorOptions {
  engine: EngineName;
  threads: DoctorThreads;
  redis: ReturnType<typeof configuredUrl>;
  mlflow: ReturnType<typeof configuredUrl>;
  /** How long one engine may take to load. */
  engineTimeoutMs: number;
  /** How long Redis and MLflow may take to answer. */
  serviceTimeoutMs: number;
}

/** The engine `lits worker --engine <request>` would run: auto takes the first of ENGINE_KINDS that loads. */
export function selectedEngine(request: EngineName, engines: readonly DoctorEngine[]): EngineKind | null {
  const loads = (kind: EngineKind): boolean => engines.some((e) => e.engine === kind && e.loads);
  if (request !== 'auto') return loads(request) ? request : null;
  return ENGINE_KINDS.find(loads) ?? null;
}

const why = (e: DoctorEngine): string =>
  `${e.package} does not load: ${e.error ?? 'unknown'}; ${e.hint ?? ''}`;

/** What stands between the GPU engine and a GPU, one line each. */
function gpuProblems(gpu: DoctorEngine | undefined, driver: DoctorDriver, cuda: DoctorCuda): string[] {
  const problems: string[] = [];
  if (!gpu?.loads) problems.push(gpu ? why(gpu) : 'the gpu engine was not probed');
  else if (gpu.gpuDevice !== true)
    problems.push(`${gpu.package} loads but TensorFlow found no GPU device, so it would run on the CPU`);
  if (!driver.found)
    problems.push(
      `no NVIDIA driver (${driver.nvidiaSmiError ?? 'nvidia-smi lists no GPU'}): ${driver.hint ?? ''}`,
    );
  else if (!driver.libcuda.loads)
    problems.push(
      `libcuda.so.1 does not load (${driver.libcuda.error ?? 'not found'}): ${driver.hint ?? ''}`,
    );
  else if (driver.gpus.length > 0 && !driver.gpus.some((g) => g.visible))
    problems.push(driver.hint ?? 'no GPU is visible');
  const missing = cuda.libraries.filter((l) => !l.loads).map((l) => l.name);
  if (missing.length > 0)
    problems.push(
      `${cuda.cuda} libraries for libtensorflow ${cuda.libtensorflow}: ${missing.join(', ')} do not load; ${cuda.hint ?? ''}`,
    );
  return problems;
}

export function judge(
  report: Omit<DoctorReport, 'ok' | 'selected' | 'problems' | 'warnings'>,
): Pick<DoctorReport, 'ok' | 'selected' | 'problems' | 'warnings'> {
  const { requested, engines, driver, cudaLibraries, runtime, services } = report;
  const selected = selectedEngine(requested, engines);
  const engine = (kind: EngineKind): DoctorEngine | undefined => engines.find((e) => e.engine === kind);
  const problems: string[] = [];
  const warnings: string[] = [];
  if (requested === 'gpu') problems.push(...gpuProblems(engine('gpu'), driver, cudaLibraries));
  else if (requested !== 'auto') {
    const asked = engine(requested);
    if (!asked?.loads) problems.push(asked ? why(asked) : `the ${requested} engine was not probed`);
  } else if (!selected) problems.push('no engine loads: ' + engines.map(why).join(' '));
  for (const e of engines) {
    // An installed engine that fails is worth a word even when another one serves the request.
    if (!e.loads && e.installed && e.engine !== requested) warnings.push(why(e));
  }
  if (requested === 'auto' && selected === 'cpu')
    warnings.push(
      `auto runs the pure-JS engine (slow); ${engine('node')?.hint ?? 'build the native engine'}`,
    );
  if (requested === 'auto' && selected === 'gpu' && engine('gpu')?.gpuDevice !== true)
    warnings.push(
      `auto picks ${engine('gpu')?.package ?? 'the gpu engine'}, which found no GPU device: it runs on the CPU`,
    );
  if (runtime.warning) warnings.push(runtime.warning);
  for (const [name, service] of Object.entries(services))
    if (service.reachable === false)
      problems.push(
        `${name} at ${service.url ?? '?'} is unreachable (${service.error ?? 'no answer'}): ${service.hint ?? ''}`,
      );
  return { ok: problems.length === 0, selected, problems, warnings };
}

export async function diagnose(opts: DoctorOptions): Promise<DoctorReport> {
  const engines = probeEngines(opts.threads, opts.engineTimeoutMs);
  const [engineList, driver, cudaLibraries, runtime, redis, mlflow] = await Promise.all([
    engines,
    checkDriver(),
    engines.then((list) => checkCudaLibraries(list.find((e) => e.engine === 'gpu'))),
    checkRuntime(),
    checkRedis(opts.redis, opts.serviceTimeoutMs),
    checkMlflow(opts.mlflow, opts.serviceTimeoutMs),
  ]);
  const facts = {
    requested: opts.engine,
    engines: engineList,
    driver,
    cudaLibraries,
    runtime,
    services: { redis, mlflow },
    checkedAt: new Date().toISOString(),
  };
  return { ...judge(facts), ...facts };
}
