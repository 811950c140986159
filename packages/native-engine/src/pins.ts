/**
 * What the native engine is built from. libtensorflow's C API comes from the PyPI tensorflow-cpu wheel
 * (the npm registry and PyPI are reachable where storage.googleapis.com, tfjs-node's own source, is not).
 * Changing the version means changing the file name and hash together.
 */
export const TENSORFLOW_CPU_VERSION = '2.18.1';

/** The one wheel that is accepted: CPython 3.11 tag only because pip needs one; the C library is the same. */
export const TENSORFLOW_WHEEL = `tensorflow_cpu-${TENSORFLOW_CPU_VERSION}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl`;

export const TENSORFLOW_WHEEL_SHA256 = '810c75d7149d2da0cb2092187817b0dcabb80728ca9f9cf3a61f3f42fadd1298';

/** The pip flags that select exactly that wheel whatever python3 runs pip. */
export const WHEEL_PIP_TARGET = { pythonVersion: '3.11', platform: 'manylinux2014_x86_64' } as const;

/** The tfjs-node release whose binding.gyp and napi_versions this was written against. */
export const TFJS_NODE_VERSION = '4.22.0';

/** Members of the wheel that become `lib/` (shared libraries) and `include/` (headers binding.gyp needs). */
export const WHEEL_LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'] as const;
export const WHEEL_LIBRARY_PREFIX = 'tensorflow/';
export const WHEEL_INCLUDE_PREFIX = 'tensorflow/include/';
/** c_api.h includes "xla/tsl/c/tsl_status.h" and "tensorflow/core/platform/ctstring.h" (→ tsl's ctstring). */
export const WHEEL_INCLUDE_SUBTREES = [
  'tensorflow/c/',
  'tensorflow/core/platform/ctstring',
  'tsl/platform/ctstring',
  'xla/tsl/c/',
] as const;

/** binding.gyp links `-ltensorflow -ltensorflow_framework`: these names point at the wheel's libraries. */
export const LINKER_NAMES: Readonly<Record<string, (typeof WHEEL_LIBRARIES)[number]>> = {
  'libtensorflow.so': 'libtensorflow_cc.so.2',
  'libtensorflow_framework.so': 'libtensorflow_framework.so.2',
};

/**
 * The GPU engine (@tensorflow/tfjs-node-gpu) is built the same way from the GPU-enabled PyPI `tensorflow` wheel:
 * CUDA 12.5 / cuDNN 9.3 (its fatbin: SASS sm_60/70/80/89/90, PTX compute_90), same C API and version.
 */
export const TENSORFLOW_GPU_VERSION = '2.18.1';
export const TENSORFLOW_GPU_WHEEL = `tensorflow-${TENSORFLOW_GPU_VERSION}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl`;
export const TENSORFLOW_GPU_WHEEL_SHA256 = 'c9f87e5d2a680a4595f5dc30daf6bbaec9d4129b46d7ef1b2af63c46ac7d2828';
export const TFJS_NODE_GPU_VERSION = '4.22.0';

/** One CUDA user-space wheel: where pip gets it, what it must hash to, and the libraries TensorFlow loads from it. */
export interface CudaWheelPin {
  project: string;
  version: string;
  file: string;
  sha256: string;
  bytes: number;
  /** File names (as extracted into deps/lib) that must dlopen; the rest of the wheel's libraries come along. */
  libraries: readonly string[];
}

const cudaWheel = (
  project: string,
  version: string,
  sha256: string,
  bytes: number,
  libraries: readonly string[],
): CudaWheelPin => ({
  project,
  version,
  file: `${project.replaceAll('-', '_')}-${version}-py3-none-manylinux2014_x86_64.whl`,
  sha256,
  bytes,
  libraries,
});

/**
 * The `and-cuda` extra of tensorflow 2.18.1's METADATA, exactly. libcuda.so.1 is not among them: it belongs
 * to the host's driver, and a copy of another driver version would not work.
 */
export const CUDA_WHEELS: readonly CudaWheelPin[] = [
  cudaWheel(
    'nvidia-cublas-cu12',
    '12.5.3.2',
    'ca070ad70e9fa6654084575d01bd001f30cc4665e33d4bb9fc8e0f321caa034b',
    363313169,
    ['libcublas.so.12', 'libcublasLt.so.12'],
  ),
  cudaWheel(
    'nvidia-cuda-cupti-cu12',
    '12.5.82',
    'bde77a5feb66752ec61db2adfe47f56b941842825b4c7e2068aff27c9d107953',
    13811507,
    ['libcupti.so.12'],
  ),
  cudaWheel(
    'nvidia-cuda-nvcc-cu12',
    '12.5.82',
    'b03e545b8e8c3ce7ebcd7fc44063180ff52ff01d064ece2127ed90a04ef12cd0',
    22468537,
    ['libnvvm.so'],
  ),
  cudaWheel(
    'nvidia-cuda-nvrtc-cu12',
    '12.5.82',
    '3dbd97b0104b4bfbc3c4f8c79cd2496307c89c43c29a9f83125f1d76296ff3fd',
    24873108,
    ['libnvrtc.so.12'],
  ),
  cudaWheel(
    'nvidia-cuda-runtime-cu12',
    '12.5.82',
    '3e79a060e126df40fd3a068f3f787eb000fa51b251ec6cd97d09579632687115',
    895707,
    ['libcudart.so.12'],
  ),
  cudaWheel(
    'nvidia-cudnn-cu12',
    '9.3.0.75',
    '9ad9c6929ebb5295eb4a1728024666d1c88283373e265a0c5c883e6f9d5cd76d',
    577163502,
    [
      'libcudnn.so.9',
      'libcudnn_ops.so.9',
      'libcudnn_cnn.so.9',
      'libcudnn_graph.so.9',
      'libcudnn_engines_precompiled.so.9',
      'libcudnn_engines_runtime_compiled.so.9',
      'libcudnn_heuristic.so.9',
    ],
  ),
  cudaWheel(
    'nvidia-cufft-cu12',
    '11.2.3.61',
    '9a6e8df162585750f61983a638104a48c756aa13f9f48e19ab079b38e3c828b8',
    192524114,
    ['libcufft.so.11'],
  ),
  cudaWheel(
    'nvidia-curand-cu12',
    '10.3.6.82',
    '2823fb27de4e44dbb22394a6adf53aa6e1b013aca0f8c22867d1cfae58405536',
    56309107,
    ['libcurand.so.10'],
  ),
  cudaWheel(
    'nvidia-cusolver-cu12',
    '11.6.3.83',
    '93cfafacde4428b71778eeb092ec615a02a3d05404da1bcf91c53e3fa1bce42b',
    130341232,
    ['libcusolver.so.11'],
  ),
  cudaWheel(
    'nvidia-cusparse-cu12',
    '12.5.1.3',
    '016df8e993c437e8301e62739f01775cba988fd5253cd4c64173f8e8d2f8e752',
    217558979,
    ['libcusparse.so.12'],
  ),
  cudaWheel(
    'nvidia-nccl-cu12',
    '2.21.5',
    '8579076d30a8c24988834445f8d633c697d42397e92ffc3f63fa26766d25e0a0',
    188654414,
    ['libnccl.so.2'],
  ),
  cudaWheel(
    'nvidia-nvjitlink-cu12',
    '12.5.82',
    'f9b37bc5c8cf7509665cb6ada5aaa0ce65618f2332b7d3e78e9790511f111212',
    21298879,
    ['libnvJitLink.so.12'],
  ),
];

/** The CUDA release the wheels above make up; names the cache folder. */
export const CUDA_LIBRARIES_RELEASE = 'cuda-12.5-cudnn-9.3';
