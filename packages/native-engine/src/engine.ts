import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { cacheRoot, withInstallLock } from '@lits-ddp/local-services';
import { buildAddon, checkLoads, clearAddon, stageLibtensorflow } from './addon.js';
import {
  checkCudaLibraries,
  cudaPinsDigest,
  ensureCudaLibraries,
  stageCudaLibraries,
} from './cuda-libraries.js';
import type { NativeEngineFileError } from './errors.js';
import { FLAVOURS, type EngineFlavour, type FlavourSpec } from './flavour.js';
import { ensureLibtensorflow } from './libtensorflow.js';
import { ensureNodeHeaders } from './node-headers.js';
import {
  locateTfjsNode,
  readTfjsNodePackage,
  staleReason,
  validMarker,
  type GpuEngineRecord,
  type NativeEngineMarker,
} from './tfjs-node-package.js';
import { platformProblem, requireCompiler, requirePip, requirePlatform, requirePython } from './toolchain.js';

export interface EnsureNativeEngineOptions {
  /** 'cpu' (default): @tensorflow/tfjs-node; 'gpu': @tensorflow/tfjs-node-gpu with the CUDA 12.5 libraries. */
  flavour?: EngineFlavour;
  /** Progress, one line per step with its duration. */
  log?: (line: string) => void;
  /** Rebuild even when the marker says the addon is current. */
  force?: boolean;
  /** The @tensorflow/tfjs-node(-gpu) folder to provision; default: the one this package resolves. */
  packageDir?: string;
  /** Where libtensorflow (and, if needed, Node headers) are cached; default cacheRoot() of local-services. */
  cacheDir?: string;
  /** The TensorFlow wheel's sha256; default the flavour's pin (an override exists for testing the check). */
  expectedSha256?: string;
  /**
   * Folders to look in for this Node's headers (include/node) before the registry fallback; default
   * npm_config_nodedir, the running node's prefix, /usr, /usr/local.
   */
  nodeHeaderDirs?: readonly string[];
}

export type NativeEngineStep =
  | 'preflight'
  | 'libtensorflow'
  | 'cuda-libraries'
  | 'node-headers'
  | 'stage'
  | 'cuda-check'
  | 'build'
  | 'load-check'
  | 'marker';

export interface NativeEngineReport {
  flavour: EngineFlavour;
  status: 'installed' | 'already-present';
  packageDir: string;
  addonPath: string;
  /** TF_Version of the loaded engine ('2.18.1'). */
  libtensorflowVersion: string;
  tfjsNodeVersion: string;
  napi: number;
  /** Whether libtensorflow was already in the cache (undefined when nothing was built). */
  libtensorflowCache?: 'hit' | 'extracted';
  /** The --nodedir node-gyp compiled against (undefined when nothing was built). */
  nodeHeadersDir?: string;
  /** The GPU engine's CUDA side, as its checks found it (also when already present: from the marker). */
  gpu?: GpuEngineRecord & { cudaCache?: 'hit' | 'extracted' };
  ms: number;
  /** Milliseconds per step, in the order they ran. */
  steps: Partial<Record<NativeEngineStep, number>>;
}

export interface NativeEngineStatus {
  ready: boolean;
  /** Why not, when not ready. */
  reason?: string;
  packageDir?: string;
  addonPath?: string;
  /** What the last install recorded, when there was one. */
  marker?: NativeEngineMarker;
}

/**
 * Whether tfjs-node's addon in the package folder is the one `ensureNativeEngine` builds: reads the
 * marker and checks the addon file exists. No child process, no load: cheap enough for every start.
 */
export function nativeEngineStatus(
  opts: { packageDir?: string; flavour?: EngineFlavour } = {},
): NativeEngineStatus {
  const platform = platformProblem();
  if (platform) return { ready: false, reason: platform };
  const spec = FLAVOURS[opts.flavour ?? 'cpu'];
  try {
    const dir = opts.packageDir ?? locateTfjsNode(spec.flavour);
    const pkg = readTfjsNodePackage(dir, spec.flavour);
    const reason = staleReason(pkg, expectedBuild(spec, spec.tensorflow.sha256));
    const marker = validMarker(pkg);
    return { ready: reason === undefined, reason, packageDir: dir, addonPath: pkg.addonPath, marker };
  } catch (err) {
    // A status, not an install: what stands in the way is the answer (the reason), not an exception.
    return { ready: false, reason: errorMessage(err) };
  }
}

/** What the marker of a current build records, for staleReason. */
function expectedBuild(
  spec: FlavourSpec,
  sha256: string,
): { wheel: string; sha256: string; cudaPins?: string } {
  const cudaPins = spec.cudaWheels.length > 0 ? cudaPinsDigest(spec.cudaWheels) : undefined;
  return { wheel: spec.tensorflow.file, sha256, cudaPins };
}

/**
 * Makes `require('@tensorflow/tfjs-node')` (flavour 'gpu': `@tensorflow/tfjs-node-gpu`) work: libtensorflow
 * from the pinned TensorFlow wheel (and, for gpu, the CUDA libraries from the pinned nvidia wheels), cached
 * once per machine, staged into the package, the addon built with node-gyp against this Node's headers, then
 * loaded in a child process; a marker written last makes the next call a no-op.
 * Throws NativeEngineUnavailableError naming what is missing and how to get it.
 */
export async function ensureNativeEngine(opts: EnsureNativeEngineOptions = {}): Promise<NativeEngineReport> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const spec = FLAVOURS[opts.flavour ?? 'cpu'];
  const sha256 = opts.expectedSha256 ?? spec.tensorflow.sha256;
  requirePlatform();
  const pkg = readTfjsNodePackage(opts.packageDir ?? locateTfjsNode(spec.flavour), spec.flavour);
  const current = (
    onInvalidMarker?: (err: NativeEngineFileError) => void,
  ): NativeEngineReport | undefined => {
    if (opts.force) return undefined;
    const marker = validMarker(pkg, onInvalidMarker);
    if (!marker || staleReason(pkg, expectedBuild(spec, sha256))) return undefined;
    return {
      flavour: spec.flavour,
      status: 'already-present',
      packageDir: pkg.dir,
      addonPath: pkg.addonPath,
      libtensorflowVersion: marker.libtensorflow,
      tfjsNodeVersion: pkg.version,
      napi: pkg.napi,
      gpu: marker.gpu,
      ms: Date.now() - started,
      steps: {},
    };
  };
  const present = current();
  if (present) return present;

  // Two installs into one package folder would delete each other's files; the second one waits and
  // then finds the first one's marker.
  return withInstallLock(join(pkg.dir, '.lits-native-engine.lock'), async () => {
    const done = current((err) => log(`${err.message}; provisioning the engine again`));
    if (done) return done;
    const steps: Partial<Record<NativeEngineStep, number>> = {};
    const step = async <T>(
      name: NativeEngineStep,
      fn: () => T | Promise<T>,
      what: (t: T) => string,
    ): Promise<T> => {
      const t0 = Date.now();
      const result = await fn();
      steps[name] = Date.now() - t0;
      log(`${name}: ${what(result)} (${steps[name]} ms)`);
      return result;
    };
    const cacheDir = opts.cacheDir ?? cacheRoot();

    const python = await step(
      'preflight',
      () => {
        const py = requirePython();
        requireCompiler(log);
        return py;
      },
      (py) =>
        `${py}, g++ and make found; ${spec.npmPackage} ${pkg.version}${pkg.version === spec.npmVersion ? '' : ` (written for ${spec.npmVersion})`}, napi ${pkg.napi}, ${pkg.dir}`,
    );
    const beforeDownload = (): void => requirePip(python, log);
    // Side by side on a cold cache: one download runs while the other wheel is hashed and unzipped.
    const [cache, cuda] = await Promise.all([
      step(
        'libtensorflow',
        () => ensureLibtensorflow({ cacheDir, wheel: spec.tensorflow, python, sha256, log, beforeDownload }),
        (c) => `${c.extracted ? 'extracted into' : 'cache hit'} ${c.dir}`,
      ),
      spec.cudaWheels.length === 0
        ? undefined
        : step(
            'cuda-libraries',
            () => ensureCudaLibraries({ cacheDir, python, wheels: spec.cudaWheels, log, beforeDownload }),
            (c): string => `${c.extracted ? 'extracted into' : 'cache hit'} ${c.dir}`,
          ),
    ]);
    const headers = await step(
      'node-headers',
      () => ensureNodeHeaders({ cacheDir, log, candidates: opts.nodeHeaderDirs }),
      (h) => `${h.dir}${h.fromRegistry ? ' (from the npm registry)' : ''}`,
    );
    await step(
      'stage',
      () => {
        clearAddon(pkg);
        const mode = stageLibtensorflow(pkg, cache);
        return { mode, cuda: cuda ? stageCudaLibraries(cuda, join(pkg.dir, 'deps', 'lib')) : 0 };
      },
      (r) =>
        `libtensorflow ${r.mode}${cuda ? ` with ${r.cuda} CUDA libraries` : ''} into ${join(pkg.dir, 'deps')}`,
    );
    const cudaCheck = cuda
      ? await step(
          'cuda-check',
          () => checkCudaLibraries(python, join(pkg.dir, 'deps', 'lib'), spec.cudaWheels),
          (c) =>
            `${c.loaded.length} CUDA libraries dlopen from deps/lib; driver: ${c.driver.found ? 'libcuda.so.1 loads' : `none (${c.driver.detail})`}`,
        )
      : undefined;
    await step(
      'build',
      () => buildAddon(pkg, { nodeDir: headers.dir, python, log }),
      () => pkg.addonPath,
    );
    const loaded = await step(
      'load-check',
      () => checkLoads(pkg),
      (v) =>
        `backend tensorflow, libtensorflow ${v.tfVersion}, conv3d ok${spec.flavour === 'gpu' ? ` on the ${v.gpuDevice ? 'GPU' : 'CPU (no GPU visible)'} device` : ''}`,
    );
    const tfVersion = loaded.tfVersion;
    const gpu: GpuEngineRecord | undefined = cudaCheck && {
      cudaPins: cudaPinsDigest(spec.cudaWheels),
      cudaLibraries: cudaCheck.loaded,
      driverFound: cudaCheck.driver.found,
      driver: cudaCheck.driver.detail,
      gpuDevice: loaded.gpuDevice,
    };
    await step(
      'marker',
      () => {
        const marker: Omit<NativeEngineMarker, 'gpu'> = {
          wheel: spec.tensorflow.file,
          sha256,
          libtensorflow: tfVersion,
          tfjsNode: pkg.version,
          napi: pkg.napi,
          nodeAbi: process.versions.modules,
          builtAt: new Date().toISOString(),
        };
        mkdirSync(join(pkg.dir, 'deps'), { recursive: true });
        // The GPU record's fields sit beside the others (the file stays one flat record).
        writeFileSync(pkg.markerPath, `${JSON.stringify({ ...marker, ...gpu }, null, 2)}\n`);
      },
      () => pkg.markerPath,
    );
    return {
      flavour: spec.flavour,
      status: 'installed',
      packageDir: pkg.dir,
      addonPath: pkg.addonPath,
      libtensorflowVersion: tfVersion,
      tfjsNodeVersion: pkg.version,
      napi: pkg.napi,
      libtensorflowCache: cache.extracted ? 'extracted' : 'hit',
      nodeHeadersDir: headers.dir,
      gpu: gpu && { ...gpu, cudaCache: cuda?.extracted ? 'extracted' : 'hit' },
      ms: Date.now() - started,
      steps,
    };
  });
}
