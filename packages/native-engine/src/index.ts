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
  TENSORFLOW_CPU_VERSION,
  TENSORFLOW_WHEEL,
  TENSORFLOW_WHEEL_SHA256,
  TFJS_NODE_VERSION,
} from './pins.js';
export { locateTfjsNode, type NativeEngineMarker } from './tfjs-node-package.js';
export { nodeHeadersVersion } from './node-headers.js';
export { runEngineCli, USAGE as LITS_ENGINE_USAGE, type CliIo } from './cli-commands.js';
