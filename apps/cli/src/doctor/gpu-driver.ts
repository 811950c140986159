// The NVIDIA driver (nvidia-smi, the kernel module, libcuda.so.1) and the CUDA user-space libraries TensorFlow
// opens when it starts on a GPU. A machine without any of them is an answer, not an error.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Type from 'typebox';
import { errorMessage } from '@lits-ddp/errors';
import { TENSORFLOW_CPU_VERSION } from '@lits-ddp/native-engine';
import { decodeJson } from '@lits-ddp/protocol';
import { NVIDIA_SMI_QUERY, parseNvidiaSmiGpus, visibleGpus, type GpuDevice } from '@lits-ddp/trainer';
import { ENGINE_PACKAGES } from '@lits-ddp/unet';
import { GPU_INSTALL_HINT } from './engine-probe.js';
import { probeLibraries } from './libraries.js';
import type { DoctorCuda, DoctorDriver, DoctorEngine } from './report-schema.js';

const DRIVER_HINT =
  'install the NVIDIA driver on the host (see docs/deploy.md, Prerequisites); in a container, run it with ' +
  'the NVIDIA Container Toolkit (docker run --gpus all) or request nvidia.com/gpu (Kubernetes)';

function nvidiaSmi(): Promise<{ gpus: GpuDevice[] } | { error: string }> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', NVIDIA_SMI_QUERY, { timeout: 15_000 }, (err, stdout, stderr) => {
      const e = err as NodeJS.ErrnoException | null;
      if (e?.code === 'ENOENT') return resolve({ error: 'nvidia-smi is not on PATH' });
      if (e) {
        const said = `${stdout}\n${stderr}`.split('\n').find((l) => l.trim() !== '');
        return resolve({ error: `nvidia-smi failed: ${said?.trim() ?? errorMessage(e)}` });
      }
      try {
        resolve({ gpus: parseNvidiaSmiGpus(stdout) });
      } catch (parseErr) {
        resolve({ error: errorMessage(parseErr) });
      }
    });
  });
}

/** The first line of /proc/driver/nvidia/version, e.g. `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15 …`. */
function kernelModule(): string | null {
  try {
    return readFileSync('/proc/driver/nvidia/version', 'utf8').split('\n')[0]?.trim() || null;
  } catch {
    // No NVIDIA kernel module loaded (or not Linux): reported as null, the answer to "which driver".
    return null;
  }
}

export async function checkDriver(env: NodeJS.ProcessEnv = process.env): Promise<DoctorDriver> {
  const [smi, [libcuda]] = await Promise.all([nvidiaSmi(), probeLibraries(['libcuda.so.1'])]);
  const module = kernelModule();
  const all = 'gpus' in smi ? smi.gpus : [];
  const visible = new Set(visibleGpus(all, env.CUDA_VISIBLE_DEVICES).map((g) => g.index));
  const moduleVersion = module ? (/Kernel Module\s+([\d.]+)/.exec(module)?.[1] ?? null) : null;
  const found = all.length > 0 || module !== null;
  const lib = libcuda ?? { name: 'libcuda.so.1', loads: false, path: null, error: 'not probed' };
  let hint: string | null = null;
  if (!found) hint = DRIVER_HINT;
  else if (!lib.loads)
    hint =
      'libcuda.so.1 comes from the host driver, never from an image: in a container the NVIDIA Container ' +
      'Toolkit mounts it (docker run --gpus all); elsewhere add its folder to LD_LIBRARY_PATH';
  else if (all.length > 0 && visible.size === 0)
    hint = `CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES ?? ''} leaves no GPU visible: unset it or name a GPU index or UUID`;
  return {
    found,
    version: all[0]?.driver ?? moduleVersion,
    kernelModule: module,
    nvidiaSmiError: 'error' in smi ? smi.error : null,
    gpus: all.map((g) => ({
      index: g.index,
      uuid: g.uuid,
      name: g.name,
      memoryBytes: g.memoryBytes,
      visible: visible.has(g.index),
    })),
    libcuda: lib,
    env: {
      CUDA_VISIBLE_DEVICES: env.CUDA_VISIBLE_DEVICES ?? null,
      CUDA_DEVICE_ORDER: env.CUDA_DEVICE_ORDER ?? null,
    },
    hint,
  };
}

/** The CUDA release and the sonames a libtensorflow version dlopens for its GPU kernels (TensorFlow's build table). */
export function cudaLibrariesFor(libtensorflow: string): { cuda: string; libraries: string[] } {
  const [major = 0, minor = 0] = libtensorflow.split('.').map(Number);
  if (major === 2 && minor < 15)
    return {
      cuda: 'CUDA 11, cuDNN 8',
      libraries: [
        'libcudart.so.11.0',
        'libcublas.so.11',
        'libcublasLt.so.11',
        'libcufft.so.10',
        'libcurand.so.10',
        'libcusolver.so.11',
        'libcusparse.so.11',
        'libcudnn.so.8',
      ],
    };
  const cudnn = major === 2 && minor < 18 ? 8 : 9;
  return {
    cuda: `CUDA 12, cuDNN ${cudnn}`,
    libraries: [
      'libcudart.so.12',
      'libcublas.so.12',
      'libcublasLt.so.12',
      'libcufft.so.11',
      'libcurand.so.10',
      'libcusolver.so.11',
      'libcusparse.so.12',
      `libcudnn.so.${cudnn}`,
    ],
  };
}

/** The GPU package's folder, when it is installed. */
function gpuPackageDir(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${ENGINE_PACKAGES.gpu}/package.json`));
  } catch {
    // Not installed: there is no deps/lib of its own to search.
    return null;
  }
}

const InstallMarker = Type.Object({ libtensorflow: Type.String() });

/** The libtensorflow an install recorded in the GPU package (the native-engine route writes this marker). */
function recordedLibtensorflow(packageDir: string): string | null {
  try {
    const marker = join(packageDir, 'deps', 'lits-native-engine.json');
    return decodeJson(InstallMarker, readFileSync(marker, 'utf8'), marker).libtensorflow;
  } catch {
    // No marker, or not one of ours: the version is then taken from the loaded engine or assumed.
    return null;
  }
}

/** The user-space CUDA libraries the GPU engine's libtensorflow needs, looked up where TensorFlow looks. */
export async function checkCudaLibraries(gpuEngine: DoctorEngine | undefined): Promise<DoctorCuda> {
  const packageDir = gpuPackageDir();
  const known = gpuEngine?.libtensorflow ?? (packageDir ? recordedLibtensorflow(packageDir) : null);
  const libtensorflow = known ?? TENSORFLOW_CPU_VERSION;
  const { cuda, libraries: names } = cudaLibrariesFor(libtensorflow);
  const libraries = await probeLibraries(names, packageDir ? join(packageDir, 'deps', 'lib') : null);
  const missing = libraries.filter((l) => !l.loads);
  let hint: string | null = null;
  if (missing.length > 0) {
    const elsewhere = missing.filter((l) => l.path).map((l) => dirname(l.path as string));
    hint =
      elsewhere.length > 0
        ? `found but not on the loader's path: add ${[...new Set(elsewhere)].join(':')} to LD_LIBRARY_PATH`
        : `${missing.map((l) => l.name).join(', ')} not found: ${GPU_INSTALL_HINT} lays ${cuda} beside ` +
          'libtensorflow (from PyPI nvidia-* wheels), as the GPU worker image does';
  }
  return { libtensorflow, assumed: known === null, cuda, libraries, hint };
}
