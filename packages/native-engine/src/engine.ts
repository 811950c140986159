import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { cacheRoot, withInstallLock } from '@lits-ddp/local-services';
import { buildAddon, checkLoads, clearAddon, stageLibtensorflow } from './addon.js';
import type { NativeEngineFileError } from './errors.js';
import { ensureLibtensorflow } from './libtensorflow.js';
import { ensureNodeHeaders } from './node-headers.js';
import { TENSORFLOW_WHEEL, TENSORFLOW_WHEEL_SHA256, TFJS_NODE_VERSION } from './pins.js';
import {
  locateTfjsNode,
  readTfjsNodePackage,
  staleReason,
  validMarker,
  type NativeEngineMarker,
} from './tfjs-node-package.js';
import { platformProblem, requireCompiler, requirePip, requirePlatform, requirePython } from './toolchain.js';

export interface EnsureNativeEngineOptions {
  /** Progress, one line per step with its duration. */
  log?: (line: string) => void;
  /** Rebuild even when the marker says the addon is current. */
  force?: boolean;
  /** The @tensorflow/tfjs-node folder to provision; default: the one this package resolves. */
  packageDir?: string;
  /** Where libtensorflow (and, if needed, Node headers) are cached; default cacheRoot() of local-services. */
  cacheDir?: string;
  /** The wheel's sha256; default TENSORFLOW_WHEEL_SHA256 (an override exists for testing the check). */
  expectedSha256?: string;
  /**
   * Folders to look in for this Node's headers (include/node) before the registry fallback; default
   * npm_config_nodedir, the running node's prefix, /usr, /usr/local.
   */
  nodeHeaderDirs?: readonly string[];
}

export type NativeEngineStep =
  'preflight' | 'libtensorflow' | 'stage' | 'node-headers' | 'build' | 'load-check' | 'marker';

export interface NativeEngineReport {
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
export function nativeEngineStatus(opts: { packageDir?: string } = {}): NativeEngineStatus {
  const platform = platformProblem();
  if (platform) return { ready: false, reason: platform };
  let dir: string;
  try {
    dir = opts.packageDir ?? locateTfjsNode();
    const pkg = readTfjsNodePackage(dir);
    const reason = staleReason(pkg, { wheel: TENSORFLOW_WHEEL, sha256: TENSORFLOW_WHEEL_SHA256 });
    const marker = validMarker(pkg);
    return { ready: reason === undefined, reason, packageDir: dir, addonPath: pkg.addonPath, marker };
  } catch (err) {
    // A status, not an install: what stands in the way is the answer (the reason), not an exception.
    return { ready: false, reason: errorMessage(err) };
  }
}

/**
 * Makes `require('@tensorflow/tfjs-node')` work: libtensorflow from the pinned tensorflow-cpu wheel
 * (cached once per machine), staged into the package, the addon built with node-gyp against this
 * Node's headers, then loaded in a child process; a marker written last makes the next call a no-op.
 * Throws NativeEngineUnavailableError naming what is missing and how to get it.
 */
export async function ensureNativeEngine(opts: EnsureNativeEngineOptions = {}): Promise<NativeEngineReport> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const sha256 = opts.expectedSha256 ?? TENSORFLOW_WHEEL_SHA256;
  requirePlatform();
  const pkg = readTfjsNodePackage(opts.packageDir ?? locateTfjsNode());
  const current = (
    onInvalidMarker?: (err: NativeEngineFileError) => void,
  ): NativeEngineReport | undefined => {
    if (opts.force) return undefined;
    const marker = validMarker(pkg, onInvalidMarker);
    if (!marker || staleReason(pkg, { wheel: TENSORFLOW_WHEEL, sha256 })) return undefined;
    return {
      status: 'already-present',
      packageDir: pkg.dir,
      addonPath: pkg.addonPath,
      libtensorflowVersion: marker.libtensorflow,
      tfjsNodeVersion: pkg.version,
      napi: pkg.napi,
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
        `${py}, g++ and make found; tfjs-node ${pkg.version}${pkg.version === TFJS_NODE_VERSION ? '' : ` (written for ${TFJS_NODE_VERSION})`}, napi ${pkg.napi}, ${pkg.dir}`,
    );
    const cache = await step(
      'libtensorflow',
      () =>
        ensureLibtensorflow({ cacheDir, python, sha256, log, beforeDownload: () => requirePip(python, log) }),
      (c) => `${c.extracted ? 'extracted into' : 'cache hit'} ${c.dir}`,
    );
    const headers = await step(
      'node-headers',
      () => ensureNodeHeaders({ cacheDir, log, candidates: opts.nodeHeaderDirs }),
      (h) => `${h.dir}${h.fromRegistry ? ' (from the npm registry)' : ''}`,
    );
    await step(
      'stage',
      () => {
        clearAddon(pkg);
        return stageLibtensorflow(pkg, cache);
      },
      (mode) => `libtensorflow ${mode} into ${join(pkg.dir, 'deps')}`,
    );
    await step(
      'build',
      () => buildAddon(pkg, { nodeDir: headers.dir, python, log }),
      () => pkg.addonPath,
    );
    const tfVersion = await step(
      'load-check',
      () => checkLoads(pkg),
      (v) => `backend tensorflow, libtensorflow ${v}, conv3d ok`,
    );
    await step(
      'marker',
      () => {
        const marker: NativeEngineMarker = {
          wheel: TENSORFLOW_WHEEL,
          sha256,
          libtensorflow: tfVersion,
          tfjsNode: pkg.version,
          napi: pkg.napi,
          nodeAbi: process.versions.modules,
          builtAt: new Date().toISOString(),
        };
        mkdirSync(join(pkg.dir, 'deps'), { recursive: true });
        writeFileSync(pkg.markerPath, `${JSON.stringify(marker, null, 2)}\n`);
      },
      () => pkg.markerPath,
    );
    return {
      status: 'installed',
      packageDir: pkg.dir,
      addonPath: pkg.addonPath,
      libtensorflowVersion: tfVersion,
      tfjsNodeVersion: pkg.version,
      napi: pkg.napi,
      libtensorflowCache: cache.extracted ? 'extracted' : 'hit',
      nodeHeadersDir: headers.dir,
      ms: Date.now() - started,
      steps,
    };
  });
}
