// The GPU engine's install route, run for real: the tensorflow GPU wheel and the 12 nvidia wheels (2.4 GB from
// PyPI, 3.8 GB extracted) on a cold cache, then the build and the load check. No GPU is needed: the engine must
// load and compute on TensorFlow's CPU device, with every CUDA library dlopen-able from deps/lib.
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cacheRoot } from '@lits-ddp/local-services';
import { afterAll, describe, expect, it } from 'vitest';
import { cudaLibrariesCacheDir } from '../src/cuda-libraries.js';
import { runCommand } from '../src/exec.js';
import {
  CUDA_WHEELS,
  ensureNativeEngine,
  nativeEngineStatus,
  runEngineCli,
  TENSORFLOW_GPU_VERSION,
} from '../src/index.js';
import { copyTfjsNode } from './package-copy.js';
import { gpuBuildUnavailable, shouldRun } from './requirements.js';
import { RESTORE_UTIL_JS } from '../src/node-compat.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

const suite = 'the GPU engine (@tensorflow/tfjs-node-gpu from the tensorflow and nvidia wheels)';
const pinnedLibraries = CUDA_WHEELS.flatMap((w) => w.libraries);

describe.runIf(shouldRun(suite, gpuBuildUnavailable()))(suite, () => {
  it('installs, loads on the CPU device without LD_LIBRARY_PATH, and a second install is a no-op', async () => {
    const lines: string[] = [];
    const first = await ensureNativeEngine({ flavour: 'gpu', log: (l) => lines.push(l) });
    expect(first).toMatchObject({ flavour: 'gpu', libtensorflowVersion: TENSORFLOW_GPU_VERSION });
    expect(first.gpu?.cudaLibraries.slice().sort()).toEqual(pinnedLibraries.slice().sort());
    // A machine without the driver cannot have a GPU device; one with it may or may not (no GPU attached).
    if (first.gpu?.driverFound === false) expect(first.gpu.gpuDevice).toBe(false);
    if (first.status === 'installed') {
      expect(Object.keys(first.steps).sort()).toEqual(
        [
          'preflight',
          'libtensorflow',
          'cuda-libraries',
          'node-headers',
          'stage',
          'cuda-check',
          'build',
          'load-check',
          'marker',
        ].sort(),
      );
    }

    // The CUDA libraries are hard links of the cache's files, flat beside libtensorflow.
    const libDir = join(first.packageDir, 'deps', 'lib');
    const cached = join(cudaLibrariesCacheDir(cacheRoot()), 'lib');
    for (const name of readdirSync(cached)) {
      expect(statSync(join(libDir, name)).ino, name).toBe(statSync(join(cached, name)).ino);
    }

    // Loaded the way a worker loads it: by package name from the repository root, with no library path set.
    // The loader's trace (LD_DEBUG) shows where TensorFlow found libcudart, which it opens even without a GPU.
    const trace = join(mkdtempSync(join(tmpdir(), 'lits-gpu-ld-')), 'ld');
    roots.push(dirname(trace));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TF_CPP_MIN_LOG_LEVEL: '2',
      TF_FORCE_GPU_ALLOW_GROWTH: 'true',
      LD_DEBUG: 'libs',
      LD_DEBUG_OUTPUT: trace,
    };
    delete env.LD_LIBRARY_PATH;
    const check = await runCommand(
      process.execPath,
      [
        '-e',
        `${RESTORE_UTIL_JS}
         const tf = require('@tensorflow/tfjs-node-gpu');
         const y = tf.conv3d(tf.ones([1, 3, 3, 3, 1]), tf.ones([3, 3, 3, 1, 1]), 1, 'valid');
         const b = tf.backend();
         console.log(JSON.stringify([tf.getBackend(), b.binding.TF_Version, y.dataSync()[0], b.isGPUPackage, b.isUsingGpuDevice]));`,
      ],
      { cwd: new URL('../../..', import.meta.url).pathname, env },
    );
    expect(check.code, check.output).toBe(0);
    expect(JSON.parse(check.stdout.trim().split('\n').at(-1) ?? '')).toEqual([
      'tensorflow',
      TENSORFLOW_GPU_VERSION,
      27,
      true,
      first.gpu?.gpuDevice,
    ]);
    const traced = readdirSync(dirname(trace))
      .map((f) => readFileSync(join(dirname(trace), f), 'utf8'))
      .join('');
    const cudart = /calling init: (\S*libcudart\.so\.12)/.exec(traced)?.[1];
    expect(cudart && realpathSync(dirname(cudart))).toBe(realpathSync(libDir));

    const mtime = statSync(first.addonPath).mtimeMs;
    const second = await ensureNativeEngine({ flavour: 'gpu' });
    expect(second).toMatchObject({
      status: 'already-present',
      steps: {},
      gpu: { cudaPins: first.gpu?.cudaPins },
    });
    expect(statSync(first.addonPath).mtimeMs).toBe(mtime);

    const status = nativeEngineStatus({ flavour: 'gpu' });
    expect(status).toMatchObject({ ready: true, addonPath: first.addonPath });
    expect(status.marker?.gpu?.cudaLibraries).toEqual(first.gpu?.cudaLibraries);
    // The cpu engine's status is its own package's.
    expect(nativeEngineStatus().packageDir).not.toBe(first.packageDir);

    let out = '';
    const code = await runEngineCli(['status', '--gpu', '--json'], {
      stdout: (t) => (out += t),
      stderr: () => undefined,
    });
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ ready: true, packageDir: first.packageDir });
  });

  it('a fresh copy of the package (as after npm ci) is not ready until installed, then is from the cache', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lits-native-engine-gpu-'));
    roots.push(root);
    const packageDir = copyTfjsNode(root, 'gpu');
    const before = nativeEngineStatus({ flavour: 'gpu', packageDir });
    expect(before.ready).toBe(false);
    expect(before.reason).toMatch(/never provisioned/);

    const report = await ensureNativeEngine({ flavour: 'gpu', packageDir });
    expect(report).toMatchObject({
      status: 'installed',
      packageDir,
      libtensorflowCache: 'hit',
      gpu: { cudaCache: 'hit' },
    });
    expect(nativeEngineStatus({ flavour: 'gpu', packageDir }).ready).toBe(true);

    // Built from other CUDA wheels (another pin set's digest): stale, and the status says so.
    const markerPath = join(packageDir, 'deps', 'lits-native-engine.json');
    const marker = JSON.parse(readFileSync(markerPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(markerPath, JSON.stringify({ ...marker, cudaPins: '0'.repeat(64) }));
    expect(nativeEngineStatus({ flavour: 'gpu', packageDir }).reason).toMatch(/built for CUDA wheels 0{64}/);
    // A marker without the GPU fields (as the cpu route writes) is not trusted either.
    const { cudaPins: _drop, ...cpuOnly } = marker;
    writeFileSync(markerPath, JSON.stringify(cpuOnly));
    expect(nativeEngineStatus({ flavour: 'gpu', packageDir }).reason).toMatch(
      /field "cudaPins" must be a string/,
    );
  });
});
