// TFJS_ENGINE=auto|gpu|node|cpu: loads a TensorFlow.js engine by dynamic import and says which one runs, with
// what, and why it is not the one asked for.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ENGINE_KINDS, ENGINES, type EngineKind } from '@lits-ddp/protocol';
import type * as tfjs from '@tensorflow/tfjs';
import { errorMessage } from '@lits-ddp/errors';
import { applyGpuDefaults, gpuEnvironment } from './gpu-environment.js';
import { nvidiaDriverPresent, restoreUtilIsNullOrUndefined } from './native-host.js';
import {
  EngineConfigError,
  EngineIdentityError,
  EngineLoadError,
  EngineThreadsPinnedError,
  EngineUnavailableError,
  type EngineAttempt,
} from './errors.js';

export type { EngineAttempt } from './errors.js';

/** The TensorFlow.js namespace every engine exposes (tfjs-node re-exports @tensorflow/tfjs). */
export type Tfjs = typeof tfjs;

// The names are the protocol's (a spec's `engine` field takes the same values), so the repo lists them once.
export const ENGINE_REQUESTS = ENGINES;
export type EngineRequest = (typeof ENGINE_REQUESTS)[number];
export type EngineName = EngineKind;

export const ENGINE_PACKAGES: Readonly<Record<EngineName, string>> = Object.freeze({
  gpu: '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
  cpu: '@tensorflow/tfjs',
});

/** The command that builds the native cpu engine from registry packages (packages/native-engine). */
export const NATIVE_ENGINE_INSTALL_HINT = 'npm run lits -- engine install';

/**
 * TensorFlow's thread pools. The intra-op count changes how kernels split their sums, so it changes the bits of
 * a native engine's results: a deterministic run pins it. Inter-op parallelism only overlaps independent ops.
 */
export interface EngineThreads {
  readonly intraOp: number;
  readonly interOp: number;
}

export interface Engine {
  readonly tf: Tfjs;
  readonly name: EngineName;
  readonly packageName: string;
  /** tfjs backend name: `tensorflow` for the native engines, `cpu` for pure JS. */
  readonly backend: string;
  readonly version: string;
  /** libtensorflow's version (TF_Version) for the native engines, null for pure JS. */
  readonly libtensorflow: string | null;
  /** The thread pools a native engine was loaded with; null for pure JS, whose kernels are sequential. */
  readonly threads: EngineThreads | null;
  /** Whether a native engine runs TensorFlow's oneDNN kernels (TF_ENABLE_ONEDNN_OPTS); null for pure JS. */
  readonly onednn: boolean | null;
  /** The instruction-set class oneDNN dispatches on (cpuIsaClass()); null for pure JS. */
  readonly cpuIsa: string | null;
  /** The GPU variables a native engine loaded with (gpuEnvironment()); null for pure JS. */
  readonly environment: Readonly<Record<string, string>> | null;
  /** Engines tried before this one and why they did not load (auto only). */
  readonly attempts: readonly EngineAttempt[];
  /**
   * Why this is not the engine `auto` prefers: set when a native engine that is installed failed to load, or
   * when auto ended on pure JS. Null when the preferred available engine runs.
   */
  readonly fallback: string | null;
  /** One line for logs, e.g. `engine node (@tensorflow/tfjs-node 4.22.0, libtensorflow 2.18.1, 1 intra-op thread)`. */
  readonly description: string;
}

export interface LoadEngineOptions {
  /** Defaults to TFJS_ENGINE, then `auto`. */
  readonly engine?: EngineRequest | string;
  /**
   * Sets the deterministic kernels' variables (TF_DETERMINISTIC_OPS, TF_CUDNN_DETERMINISTIC, TF_CUDNN_USE_AUTOTUNE=0,
   * NVIDIA_TF32_OVERRIDE=0) before any native engine loads; the GPU defaults are set either way (applyGpuDefaults).
   */
  readonly deterministic?: boolean;
  /**
   * Thread pools for a native engine, set before it loads. Default: TF_NUM_INTRAOP_THREADS /
   * TF_NUM_INTEROP_THREADS when set, else every available core and 1 inter-op thread. A process loads native
   * TensorFlow once: asking again for other counts is an error.
   */
  readonly threads?: EngineThreads;
}

export function parseEngineRequest(value: string | undefined, source = 'TFJS_ENGINE'): EngineRequest {
  if (value === undefined || value === '') return 'auto';
  const v = value.trim().toLowerCase();
  if ((ENGINE_REQUESTS as readonly string[]).includes(v)) return v as EngineRequest;
  throw new EngineConfigError(`${source}='${value}' is not one of ${ENGINE_REQUESTS.join(', ')}`);
}

/** A thread count from a flag or variable: a whole number from 1 to 1024. */
export function parseThreadCount(value: string | number, source: string): number {
  const n = typeof value === 'number' ? value : Number(value.trim());
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw new EngineConfigError(`${source}=${String(value)} is not a whole number of threads from 1 to 1024`);
  return n;
}

function threadsFromEnvironment(): EngineThreads {
  const intra = process.env['TF_NUM_INTRAOP_THREADS'];
  const inter = process.env['TF_NUM_INTEROP_THREADS'];
  return {
    intraOp: intra ? parseThreadCount(intra, 'TF_NUM_INTRAOP_THREADS') : availableParallelism(),
    interOp: inter ? parseThreadCount(inter, 'TF_NUM_INTEROP_THREADS') : 1,
  };
}

export function formatThreads(threads: EngineThreads): string {
  const s = (n: number): string => (n === 1 ? '' : 's');
  return `${threads.intraOp} intra-op thread${s(threads.intraOp)}, ${threads.interOp} inter-op thread${s(threads.interOp)}`;
}

/** oneDNN's instruction-set classes, best first, with the /proc/cpuinfo flags each needs. */
const ISA_CLASSES: readonly (readonly [string, readonly string[]])[] = [
  ['avx512_core_amx', ['amx_tile', 'amx_bf16', 'avx512_bf16']],
  ['avx512_core_fp16', ['avx512_fp16', 'avx512_bf16']],
  ['avx512_core_bf16', ['avx512_bf16', 'avx512_vnni']],
  ['avx512_core_vnni', ['avx512_vnni', 'avx512bw', 'avx512vl', 'avx512dq']],
  ['avx512_core', ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq']],
  ['avx2_vnni', ['avx_vnni', 'avx2', 'fma']],
  ['avx2', ['avx2', 'fma']],
  ['avx', ['avx']],
];

/**
 * The instruction-set class oneDNN picks its kernels by on this machine (e.g. `x86_64 avx512_core_amx`): native
 * results differ between classes (seen here: the same steps at AVX2 and at AVX-512 give other bits). From
 * /proc/cpuinfo; the architecture alone elsewhere.
 */
export function cpuIsaClass(): string {
  let flags: Set<string>;
  try {
    const line = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
    flags = new Set(line.trim().split(/\s+/));
  } catch {
    // Not Linux (no /proc/cpuinfo): the architecture alone is the class, as documented above.
    return process.arch;
  }
  const best = ISA_CLASSES.find(([, needs]) => needs.every((f) => flags.has(f)))?.[0] ?? 'sse';
  return `${process.arch === 'x64' ? 'x86_64' : process.arch} ${best}`;
}

/** The counts this process's native TensorFlow was loaded with: its pools are sized once, at load. */
let nativeThreads: EngineThreads | null = null;

function isTfjs(value: unknown): value is Tfjs {
  if (typeof value !== 'object' || value === null) return false;
  const ns = value as Record<string, unknown>;
  return typeof ns['tensor'] === 'function' && typeof ns['setBackend'] === 'function';
}

/** The first line only: a failed native load appends the whole library search path. */
function messageOf(err: unknown): string {
  return errorMessage(err).split('\n')[0] || (err instanceof Error ? err.name : '');
}

/** True when the failure is the package itself being absent (not its addon or its libraries). */
function packageMissing(err: unknown, packageName: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    messageOf(err).includes(`'${packageName}'`)
  );
}

async function importTfjs(packageName: string): Promise<Tfjs> {
  if (packageName !== ENGINE_PACKAGES.cpu) restoreUtilIsNullOrUndefined();
  // A variable specifier keeps TypeScript and bundlers from resolving the optional native packages.
  const specifier: string = packageName;
  const mod: unknown = await import(specifier);
  const candidates = [mod, (mod as { default?: unknown }).default];
  const tf = candidates.find(isTfjs);
  if (!tf)
    throw new EngineLoadError(packageName, `${packageName} loaded but does not export the TensorFlow.js API`);
  return tf;
}

/** libtensorflow's TF_Version, read from the tfjs-node binding behind the active backend. */
function libtensorflowVersion(tf: Tfjs): string | null {
  const backend = tf.backend() as unknown as { binding?: { TF_Version?: unknown } };
  const v = backend.binding?.TF_Version;
  return typeof v === 'string' ? v : null;
}

function pinThreads(requested: EngineThreads): EngineThreads {
  if (nativeThreads) {
    if (nativeThreads.intraOp !== requested.intraOp || nativeThreads.interOp !== requested.interOp)
      throw new EngineThreadsPinnedError(
        `native TensorFlow is already loaded in this process with ${formatThreads(nativeThreads)}; ` +
          `${formatThreads(requested)} needs a new process`,
      );
    return nativeThreads;
  }
  process.env['TF_NUM_INTRAOP_THREADS'] = String(requested.intraOp);
  process.env['TF_NUM_INTEROP_THREADS'] = String(requested.interOp);
  // TensorFlow's default on x86-64, made explicit: oneDNN's kernels give other bits than Eigen's.
  process.env['TF_ENABLE_ONEDNN_OPTS'] ??= '1';
  // Unless asked otherwise, keep TensorFlow's start-up banners (oneDNN, CPU features) off stderr.
  process.env['TF_CPP_MIN_LOG_LEVEL'] ??= '2';
  return requested;
}

async function activate(
  name: EngineName,
  attempts: EngineAttempt[],
  threads: EngineThreads | null,
): Promise<Omit<Engine, 'fallback'>> {
  const packageName = ENGINE_PACKAGES[name];
  const pinned = name === 'cpu' || !threads ? null : pinThreads(threads);
  const tf = await importTfjs(packageName);
  const backend = name === 'cpu' ? 'cpu' : 'tensorflow';
  if (!(await tf.setBackend(backend)))
    throw new EngineLoadError(packageName, `${packageName} loaded but backend '${backend}' did not start`);
  await tf.ready();
  if (pinned) nativeThreads = pinned;
  // Silences the "install tfjs-node" banner and debug-only checks; numerics are unchanged.
  tf.env().set('PROD', true);
  const version = tf.version.tfjs;
  const libtensorflow = name === 'cpu' ? null : libtensorflowVersion(tf);
  const parts = [`${packageName} ${version}`];
  if (libtensorflow) parts.push(`libtensorflow ${libtensorflow}`);
  parts.push(`backend ${tf.getBackend()}`);
  if (pinned) parts.push(formatThreads(pinned));
  return {
    tf,
    name,
    packageName,
    backend: tf.getBackend(),
    version,
    libtensorflow,
    threads: pinned,
    onednn: name === 'cpu' ? null : process.env['TF_ENABLE_ONEDNN_OPTS'] !== '0',
    cpuIsa: name === 'cpu' ? null : cpuIsaClass(),
    environment: name === 'cpu' ? null : gpuEnvironment(),
    attempts,
    description: `engine ${name} (${parts.join(', ')})`,
  };
}

/** Engine.fallback: why `auto` got `name` after `attempts`, or null when that is the engine it prefers. */
export function engineFallbackReason(
  request: EngineRequest,
  name: EngineName,
  attempts: readonly EngineAttempt[],
): string | null {
  if (request !== 'auto') return null;
  const broken = attempts.filter((a) => a.installed);
  if (name !== 'cpu' && broken.length === 0) return null;
  const tried = (name === 'cpu' ? attempts : broken).map((a) => `${a.packageName}: ${a.error}`).join('; ');
  const hint = name === 'cpu' ? ` (build the native engine with: ${NATIVE_ENGINE_INSTALL_HINT})` : '';
  return `auto fell back to ${ENGINE_PACKAGES[name]}: ${tried}${hint}`;
}

/**
 * Loads the requested engine. `auto` tries tfjs-node-gpu, then tfjs-node, then pure-JS tfjs (cpu) and says in
 * `fallback` why it did not get a native one; an explicit `gpu` or `node` that cannot load is an error naming
 * the missing package, never a silent fallback.
 */
export async function loadEngine(options: LoadEngineOptions = {}): Promise<Engine> {
  const request = parseEngineRequest(options.engine ?? process.env['TFJS_ENGINE']);
  applyGpuDefaults(options.deterministic ?? false);
  const threads = options.threads ?? nativeThreads ?? threadsFromEnvironment();
  const order: readonly EngineName[] = request === 'auto' ? ENGINE_KINDS : [request];
  const attempts: EngineAttempt[] = [];
  for (const name of order) {
    // Without an NVIDIA driver tfjs-node-gpu would run on the CPU under another engine name: auto takes node.
    if (request === 'auto' && name === 'gpu' && !nvidiaDriverPresent()) {
      attempts.push({
        engine: name,
        packageName: ENGINE_PACKAGES.gpu,
        error: 'no NVIDIA driver',
        installed: false,
      });
      continue;
    }
    try {
      const engine = await activate(name, attempts, threads);
      return { ...engine, fallback: engineFallbackReason(request, name, attempts) };
    } catch (err) {
      // Not dropped: recorded in `attempts`, which the fallback reason or the EngineUnavailableError reports.
      const packageName = ENGINE_PACKAGES[name];
      attempts.push({
        engine: name,
        packageName,
        error: messageOf(err),
        installed: !packageMissing(err, packageName),
      });
    }
  }
  throw engineUnavailable(request, attempts);
}

/** The error of a request whose last engine did not load: the package, why, and the command that builds it. */
export function engineUnavailable(
  request: EngineRequest,
  attempts: readonly EngineAttempt[],
): EngineUnavailableError {
  const last = attempts[attempts.length - 1] as EngineAttempt;
  const hint =
    last.engine === 'gpu'
      ? ` Build it with: ${NATIVE_ENGINE_INSTALL_HINT} --gpu (or use TFJS_ENGINE=auto|cpu).`
      : last.engine === 'node'
        ? ` Build it with: ${NATIVE_ENGINE_INSTALL_HINT} (or use TFJS_ENGINE=auto|cpu).`
        : '';
  return new EngineUnavailableError(
    `TFJS_ENGINE=${request} needs ${last.packageName}, which could not be loaded: ${last.error}.${hint}`,
    [...attempts],
  );
}

/**
 * What decides a model's bits besides its inputs: the engine, its versions and (native) its thread pools.
 * Checkpoints store it; a deterministic run refuses to mix identities.
 */
export interface EngineIdentity {
  readonly name: EngineName;
  /** @tensorflow/tfjs version. */
  readonly version: string;
  readonly libtensorflow: string | null;
  readonly threads: EngineThreads | null;
  /** Native: oneDNN kernels on or off. Absent in identities recorded before it was (unknown). */
  readonly onednn?: boolean | null;
  /** Native: cpuIsaClass(). Absent in identities recorded before it was (unknown). */
  readonly cpuIsa?: string | null;
}

export function engineIdentity(engine: Engine): EngineIdentity {
  return {
    name: engine.name,
    version: engine.version,
    libtensorflow: engine.libtensorflow,
    threads: engine.threads,
    onednn: engine.onednn,
    cpuIsa: engine.cpuIsa,
  };
}

export function formatEngineIdentity(id: EngineIdentity): string {
  const parts = [`tfjs ${id.version}`];
  if (id.libtensorflow) parts.push(`libtensorflow ${id.libtensorflow}`);
  if (id.threads) parts.push(formatThreads(id.threads));
  if (typeof id.onednn === 'boolean') parts.push(`oneDNN ${id.onednn ? 'on' : 'off'}`);
  if (id.cpuIsa) parts.push(id.cpuIsa);
  return `${id.name} (${parts.join(', ')})`;
}

/**
 * Null when both give the same bits for the same inputs, else what differs. The hardware part (oneDNN, the
 * instruction-set class) is compared only when both record it; other hardware differences (cache sizes, GPU
 * models) are not captured: the promise stays per hardware class.
 */
export function engineIdentityDifference(a: EngineIdentity, b: EngineIdentity): string | null {
  const known = <T>(x: T | null | undefined, y: T | null | undefined): boolean =>
    x !== undefined && y !== undefined && x !== y;
  const differs =
    a.name !== b.name ||
    a.version !== b.version ||
    a.libtensorflow !== b.libtensorflow ||
    a.threads?.intraOp !== b.threads?.intraOp ||
    a.threads?.interOp !== b.threads?.interOp ||
    known(a.onednn, b.onednn) ||
    known(a.cpuIsa, b.cpuIsa);
  return differs ? `${formatEngineIdentity(a)} vs ${formatEngineIdentity(b)}` : null;
}

function isEngineName(value: unknown): value is EngineName {
  return (ENGINE_KINDS as readonly unknown[]).includes(value);
}

/** Validates an identity read from a file or Redis; `source` names where it came from. */
export function parseEngineIdentity(value: unknown, source: string): EngineIdentity {
  const v = value as Partial<Record<keyof EngineIdentity, unknown>> | null;
  const fail = (why: string): never => {
    throw new EngineIdentityError(`${source}: engine identity ${why}`);
  };
  if (typeof v !== 'object' || v === null) return fail('must be an object');
  if (!isEngineName(v.name))
    return fail(`name must be ${ENGINE_KINDS.slice(0, -1).join(', ')} or ${ENGINE_KINDS.at(-1)}`);
  if (typeof v.version !== 'string') return fail('version must be a string');
  if (v.libtensorflow !== null && typeof v.libtensorflow !== 'string')
    return fail('libtensorflow must be a string or null');
  let threads: EngineThreads | null = null;
  if (v.threads !== null) {
    const t = v.threads as Partial<Record<keyof EngineThreads, unknown>> | undefined;
    if (typeof t !== 'object' || !Number.isInteger(t.intraOp) || !Number.isInteger(t.interOp))
      return fail('threads must be null or { intraOp, interOp } integers');
    threads = { intraOp: t.intraOp as number, interOp: t.interOp as number };
  }
  const raw = value as { onednn?: unknown; cpuIsa?: unknown };
  if (raw.onednn !== undefined && raw.onednn !== null && typeof raw.onednn !== 'boolean')
    return fail('onednn must be a boolean or null');
  if (raw.cpuIsa !== undefined && raw.cpuIsa !== null && typeof raw.cpuIsa !== 'string')
    return fail('cpuIsa must be a string or null');
  return {
    name: v.name,
    version: v.version,
    libtensorflow: v.libtensorflow ?? null,
    threads,
    ...(raw.onednn !== undefined ? { onednn: raw.onednn as boolean | null } : {}),
    ...(raw.cpuIsa !== undefined ? { cpuIsa: raw.cpuIsa as string | null } : {}),
  };
}
