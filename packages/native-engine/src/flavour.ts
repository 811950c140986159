// The two engines this package provisions differ only in which npm package is built, which TensorFlow wheel
// supplies libtensorflow, and (GPU) which CUDA wheels are laid out beside it.
import {
  CUDA_WHEELS,
  TENSORFLOW_CPU_VERSION,
  TENSORFLOW_GPU_VERSION,
  TENSORFLOW_GPU_WHEEL,
  TENSORFLOW_GPU_WHEEL_SHA256,
  TENSORFLOW_WHEEL,
  TENSORFLOW_WHEEL_SHA256,
  TFJS_NODE_GPU_VERSION,
  TFJS_NODE_VERSION,
  type CudaWheelPin,
} from './pins.js';

export const ENGINE_FLAVOURS = ['cpu', 'gpu'] as const;
/** 'cpu': @tensorflow/tfjs-node; 'gpu': @tensorflow/tfjs-node-gpu (CUDA kernels, runs on the CPU device too). */
export type EngineFlavour = (typeof ENGINE_FLAVOURS)[number];

/** The pinned PyPI wheel libtensorflow is taken from. */
export interface TensorflowWheelPin {
  /** The PyPI project: `tensorflow-cpu` or `tensorflow`. */
  project: string;
  version: string;
  file: string;
  sha256: string;
  /** For the progress line ("230 MB"). */
  size: string;
  /** The cache folder's name under the cache root. */
  cacheName: string;
}

export interface FlavourSpec {
  flavour: EngineFlavour;
  /** The npm package whose addon is built. */
  npmPackage: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu';
  /** The version the pins were written against. */
  npmVersion: string;
  tensorflow: TensorflowWheelPin;
  /** The CUDA user-space wheels extracted beside libtensorflow (none for cpu). */
  cudaWheels: readonly CudaWheelPin[];
}

export const FLAVOURS: Readonly<Record<EngineFlavour, FlavourSpec>> = {
  cpu: {
    flavour: 'cpu',
    npmPackage: '@tensorflow/tfjs-node',
    npmVersion: TFJS_NODE_VERSION,
    tensorflow: {
      project: 'tensorflow-cpu',
      version: TENSORFLOW_CPU_VERSION,
      file: TENSORFLOW_WHEEL,
      sha256: TENSORFLOW_WHEEL_SHA256,
      size: '230 MB',
      cacheName: `libtensorflow-cpu-${TENSORFLOW_CPU_VERSION}`,
    },
    cudaWheels: [],
  },
  gpu: {
    flavour: 'gpu',
    npmPackage: '@tensorflow/tfjs-node-gpu',
    npmVersion: TFJS_NODE_GPU_VERSION,
    tensorflow: {
      project: 'tensorflow',
      version: TENSORFLOW_GPU_VERSION,
      file: TENSORFLOW_GPU_WHEEL,
      sha256: TENSORFLOW_GPU_WHEEL_SHA256,
      size: '616 MB',
      cacheName: `libtensorflow-gpu-${TENSORFLOW_GPU_VERSION}`,
    },
    cudaWheels: CUDA_WHEELS,
  },
};

export function isEngineFlavour(value: string): value is EngineFlavour {
  return (ENGINE_FLAVOURS as readonly string[]).includes(value);
}
