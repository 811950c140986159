import { copyFileSync, cpSync, existsSync, linkSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { NativeEngineUnavailableError } from './errors.js';
import { describeExit, lastLines, runCommand } from './exec.js';
import { parseRecord } from './json-record.js';
import type { LibtensorflowCache } from './libtensorflow.js';
import { LINKER_NAMES, WHEEL_LIBRARIES } from './pins.js';
import type { TfjsNodePackage } from './tfjs-node-package.js';
import { RESTORE_UTIL_JS } from './node-compat.js';

/** Removes what an earlier build left (the marker first, so a half-done rebuild never looks complete). */
export function clearAddon(pkg: TfjsNodePackage): void {
  rmSync(pkg.markerPath, { force: true });
  for (const dir of [pkg.moduleDir, join(pkg.dir, 'deps', 'lib'), join(pkg.dir, 'deps', 'include')]) {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Puts libtensorflow where binding.gyp expects it: `deps/lib` (linked with `-ltensorflow
 * -ltensorflow_framework`, found at run time through rpath `$ORIGIN/../../deps/lib`) and the headers
 * in `deps/include`. The 680 MB of libraries are hard links into the cache when it is on the same
 * file system, so a reinstall after `npm ci` copies nothing.
 */
export function stageLibtensorflow(
  pkg: TfjsNodePackage,
  cache: Pick<LibtensorflowCache, 'lib' | 'include'>,
): 'linked' | 'copied' {
  const lib = join(pkg.dir, 'deps', 'lib');
  mkdirSync(lib, { recursive: true });
  let mode: 'linked' | 'copied' = 'linked';
  for (const name of WHEEL_LIBRARIES) {
    try {
      linkSync(join(cache.lib, name), join(lib, name));
    } catch (err) {
      // No hard link across file systems or past the link limit: a copy does the same job.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
      copyFileSync(join(cache.lib, name), join(lib, name));
      mode = 'copied';
    }
  }
  for (const [alias, target] of Object.entries(LINKER_NAMES)) symlinkSync(target, join(lib, alias));
  cpSync(cache.include, join(pkg.dir, 'deps', 'include'), { recursive: true });
  return mode;
}

/**
 * `node-gyp rebuild` of tfjs_binding in the package folder, with the arguments node-pre-gyp would
 * pass. module_path must be absolute: node-gyp resolves a relative one against build/.
 */
export async function buildAddon(
  pkg: TfjsNodePackage,
  opts: { nodeDir: string; python: string; log: (line: string) => void },
): Promise<void> {
  const nodeGyp = join(
    dirname(createRequire(import.meta.url).resolve('node-gyp/package.json')),
    'bin',
    'node-gyp.js',
  );
  const args = [
    nodeGyp,
    'rebuild',
    `--nodedir=${opts.nodeDir}`,
    `--python=${opts.python}`,
    '--jobs=max',
    `--module_name=${pkg.moduleName}`,
    `--module_path=${resolve(pkg.moduleDir)}`,
    `--napi_build_version=${pkg.napi}`,
  ];
  opts.log(`node-gyp rebuild (napi ${pkg.napi}, headers ${opts.nodeDir})`);
  const r = await runCommand(process.execPath, args, { cwd: pkg.dir, timeoutMs: 20 * 60_000 });
  if (r.code !== 0 || r.error) {
    throw new NativeEngineUnavailableError(
      'addon-build',
      `node-gyp rebuild of ${pkg.moduleName} failed (${describeExit(r)}) in ${pkg.dir}`,
      'The last lines of the compiler output follow; fix the cause and run `lits-engine install` again',
      lastLines(r.output, 20),
    );
  }
  if (!existsSync(pkg.addonPath)) {
    throw new NativeEngineUnavailableError(
      'addon-build',
      `node-gyp rebuild succeeded but ${pkg.addonPath} was not written`,
      'Check the module_path in the package.json of @tensorflow/tfjs-node',
      lastLines(r.output, 10),
    );
  }
}

const RESULT_TAG = 'LITS_NATIVE_ENGINE_CHECK ';

// Plain CommonJS for `node -e`: load the package folder exactly as an application would, ask
// node-pre-gyp where it loads the addon from, and run one small conv3d (every output 2x2x2 ones = 8).
const CHECK_JS = `
const path = require('path');
const dir = process.argv[1];
${RESTORE_UTIL_JS}
const tf = require(dir);
const preGyp = require(require.resolve('@mapbox/node-pre-gyp', { paths: [dir] }));
const bindingPath = preGyp.find(path.join(dir, 'package.json'));
const y = tf.conv3d(tf.ones([1, 4, 4, 4, 1]), tf.ones([2, 2, 2, 1, 1]), 1, 'valid');
const values = Array.from(y.dataSync());
process.stdout.write('\\n' + ${JSON.stringify(RESULT_TAG)} + JSON.stringify({
  backend: tf.getBackend(),
  tfVersion: String(tf.backend().binding.TF_Version),
  bindingPath,
  conv3dOk: values.length === 27 && values.every((v) => v === 8),
  gpuPackage: tf.backend().isGPUPackage === true,
  gpuDevice: tf.backend().isUsingGpuDevice === true,
}) + '\\n');
`;

/** The result line CHECK_JS prints. */
const CHECK_RESULT_FIELDS = {
  backend: 'string',
  tfVersion: 'string',
  bindingPath: 'string',
  conv3dOk: 'boolean',
  gpuPackage: 'boolean',
  gpuDevice: 'boolean',
} as const;

/** What the load check saw. */
export interface LoadCheck {
  /** TF_Version of the loaded libtensorflow. */
  tfVersion: string;
  /** Whether TensorFlow placed ops on a GPU (only ever with tfjs-node-gpu, and only where a GPU is visible). */
  gpuDevice: boolean;
}

/**
 * Loads the package in a child process (a crash there must not take us down). For the GPU package, no GPU is
 * not a failure: the conv3d then runs on TensorFlow's CPU device.
 */
export async function checkLoads(pkg: TfjsNodePackage): Promise<LoadCheck> {
  // The folder that holds node_modules, as if an application there required it.
  const cwd = resolve(pkg.dir, '..', '..', '..');
  // Allow-growth: on a GPU box the check must not take the memory of a worker already running there.
  const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', TF_FORCE_GPU_ALLOW_GROWTH: 'true' };
  const r = await runCommand(process.execPath, ['-e', CHECK_JS, pkg.dir], {
    cwd: existsSync(cwd) ? cwd : pkg.dir,
    env,
    timeoutMs: 5 * 60_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith(RESULT_TAG));
  const fail = (problem: string): NativeEngineUnavailableError =>
    new NativeEngineUnavailableError(
      'load-check',
      `the built engine in ${pkg.dir} failed its load check: ${problem}`,
      'Rebuild with `lits-engine install --force`; the child process output follows',
      lastLines(r.output, 15),
    );
  if (r.code !== 0 || !line) throw fail(`node exited with ${describeExit(r)}`);
  const parsed = parseRecord(line.slice(RESULT_TAG.length), CHECK_RESULT_FIELDS);
  if ('problem' in parsed) throw fail(`its result line is malformed: ${parsed.problem}`);
  const result = parsed.record;
  if (result.backend !== 'tensorflow') throw fail(`tf.getBackend() is ${result.backend}, not tensorflow`);
  if (resolve(result.bindingPath) !== resolve(pkg.addonPath)) {
    throw fail(`node-pre-gyp loads ${result.bindingPath} but the addon was built at ${pkg.addonPath}`);
  }
  if (!result.conv3dOk) throw fail('a 4x4x4 conv3d with a 2x2x2 ones kernel gave wrong values');
  if (result.gpuPackage !== (pkg.flavour === 'gpu')) {
    throw fail(`the backend says isGPUPackage ${result.gpuPackage} for the ${pkg.flavour} engine`);
  }
  return { tfVersion: result.tfVersion, gpuDevice: result.gpuDevice };
}
