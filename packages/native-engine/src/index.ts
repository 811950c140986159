export {
  ensureNativeEngine,
  nativeEngineStatus,
  type EnsureNativeEngineOptions,
  type NativeEngineReport,
  type NativeEngineStatus,
  type NativeEngineStep,
} from './engine.js';
export {
  NativeEngineFileError,
  NativeEngineRequiredError,
  NativeEngineUnavailableError,
  type NativeEngineRequirement,
} from './errors.js';
export {
  CUDA_LIBRARIES_RELEASE,
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
export {
  ENGINE_FLAVOURS,
  FLAVOURS,
  isEngineFlavour,
  type EngineFlavour,
  type FlavourSpec,
} from './flavour.js';
export { locateTfjsNode, type GpuEngineRecord, type NativeEngineMarker } from './tfjs-node-package.js';
export { nodeHeadersVersion } from './node-headers.js';
export { runEngineCli, USAGE as LITS_ENGINE_USAGE, type CliIo } from './cli-commands.js';
export { RESTORE_UTIL_JS } from './node-compat.js';
