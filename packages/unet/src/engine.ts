// TFJS_ENGINE=auto|gpu|node|cpu: loads a TensorFlow.js engine by dynamic import and says which one runs.
import type * as tfjs from '@tensorflow/tfjs';

/** The TensorFlow.js namespace every engine exposes (tfjs-node re-exports @tensorflow/tfjs). */
export type Tfjs = typeof tfjs;

export const ENGINE_REQUESTS = ['auto', 'gpu', 'node', 'cpu'] as const;
export type EngineRequest = (typeof ENGINE_REQUESTS)[number];
export type EngineName = 'gpu' | 'node' | 'cpu';

export const ENGINE_PACKAGES: Readonly<Record<EngineName, string>> = Object.freeze({
  gpu: '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
  cpu: '@tensorflow/tfjs',
});

export interface EngineAttempt {
  readonly engine: EngineName;
  readonly packageName: string;
  readonly error: string;
}

export interface Engine {
  readonly tf: Tfjs;
  readonly name: EngineName;
  readonly packageName: string;
  /** tfjs backend name: `tensorflow` for the native engines, `cpu` for pure JS. */
  readonly backend: string;
  readonly version: string;
  /** Native engines tried before this one and why they did not load (auto only). */
  readonly attempts: readonly EngineAttempt[];
  /** One line for logs, e.g. `engine cpu (@tensorflow/tfjs 4.22.0, backend cpu)`. */
  readonly description: string;
}

export interface LoadEngineOptions {
  /** Defaults to TFJS_ENGINE, then `auto`. */
  readonly engine?: EngineRequest | string;
  /** Sets TF_DETERMINISTIC_OPS=1 and TF_CUDNN_DETERMINISTIC=1 before any native engine loads. */
  readonly deterministic?: boolean;
}

export class EngineUnavailableError extends Error {
  constructor(
    message: string,
    readonly attempts: readonly EngineAttempt[],
  ) {
    super(message);
    this.name = 'EngineUnavailableError';
  }
}

export function parseEngineRequest(value: string | undefined, source = 'TFJS_ENGINE'): EngineRequest {
  if (value === undefined || value === '') return 'auto';
  const v = value.trim().toLowerCase();
  if ((ENGINE_REQUESTS as readonly string[]).includes(v)) return v as EngineRequest;
  throw new RangeError(`${source}='${value}' is not one of ${ENGINE_REQUESTS.join(', ')}`);
}

function isTfjs(value: unknown): value is Tfjs {
  if (typeof value !== 'object' || value === null) return false;
  const ns = value as Record<string, unknown>;
  return typeof ns['tensor'] === 'function' && typeof ns['setBackend'] === 'function';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] || err.name : String(err);
}

async function importTfjs(packageName: string): Promise<Tfjs> {
  // A variable specifier keeps TypeScript and bundlers from resolving the optional native packages.
  const specifier: string = packageName;
  const mod: unknown = await import(specifier);
  const candidates = [mod, (mod as { default?: unknown }).default];
  const tf = candidates.find(isTfjs);
  if (!tf) throw new Error(`${packageName} loaded but does not export the TensorFlow.js API`);
  return tf;
}

async function activate(name: EngineName, attempts: EngineAttempt[]): Promise<Engine> {
  const packageName = ENGINE_PACKAGES[name];
  const tf = await importTfjs(packageName);
  const backend = name === 'cpu' ? 'cpu' : 'tensorflow';
  if (!(await tf.setBackend(backend)))
    throw new Error(`${packageName} loaded but backend '${backend}' did not start`);
  await tf.ready();
  // Silences the "install tfjs-node" banner and debug-only checks; numerics are unchanged.
  tf.env().set('PROD', true);
  const version = tf.version.tfjs;
  return {
    tf,
    name,
    packageName,
    backend: tf.getBackend(),
    version,
    attempts,
    description: `engine ${name} (${packageName} ${version}, backend ${tf.getBackend()})`,
  };
}

/**
 * Loads the requested engine. `auto` tries tfjs-node-gpu, then tfjs-node, then pure-JS tfjs (cpu); an explicit
 * `gpu` or `node` that cannot load is an error naming the missing package, never a silent fallback.
 */
export async function loadEngine(options: LoadEngineOptions = {}): Promise<Engine> {
  const request = parseEngineRequest(options.engine ?? process.env['TFJS_ENGINE']);
  if (options.deterministic) {
    process.env['TF_DETERMINISTIC_OPS'] = '1';
    process.env['TF_CUDNN_DETERMINISTIC'] = '1';
  }
  const order: EngineName[] = request === 'auto' ? ['gpu', 'node', 'cpu'] : [request];
  const attempts: EngineAttempt[] = [];
  for (const name of order) {
    try {
      return await activate(name, attempts);
    } catch (err) {
      attempts.push({ engine: name, packageName: ENGINE_PACKAGES[name], error: messageOf(err) });
    }
  }
  const last = attempts[attempts.length - 1] as EngineAttempt;
  const hint =
    last.engine === 'cpu'
      ? ''
      : ` Install it (npm install ${last.packageName}@4.22.0${last.engine === 'gpu' ? '; needs CUDA 11.2 and cuDNN 8' : ''}) or use TFJS_ENGINE=auto|cpu.`;
  throw new EngineUnavailableError(
    `TFJS_ENGINE=${request} needs ${last.packageName}, which could not be loaded: ${last.error}.${hint}`,
    attempts,
  );
}
