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
