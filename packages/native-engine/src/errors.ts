import { LitsError } from '@lits-ddp/errors';

/** What stood in the way; a caller can branch on it (e.g. fall back to the cpu engine on any of them). */
export type NativeEngineRequirement =
  | 'linux-x64'
  | '@tensorflow/tfjs-node'
  | '@tensorflow/tfjs-node-gpu'
  | 'python3'
  | 'pip'
  | 'g++'
  | 'make'
  | 'node-headers'
  | 'wheel-download'
  | 'wheel-sha256'
  | 'wheel-extract'
  | 'addon-build'
  | 'cuda-libraries'
  | 'load-check';

/**
 * The native engine cannot be provisioned here. The message says what is missing, then how to get it
 * (`remedy`, also on its own), then any tool output (`detail`: the last lines of pip, node-gyp or the
 * load check).
 */
export class NativeEngineUnavailableError extends LitsError {
  constructor(
    readonly missing: NativeEngineRequirement,
    problem: string,
    readonly remedy: string,
    readonly detail?: string,
  ) {
    super('NATIVE_ENGINE_UNAVAILABLE', `${problem}. ${remedy}${detail ? `\n${detail}` : ''}`);
  }
}

/**
 * A file this package wrote (the addon's marker, the libtensorflow cache marker) exists but cannot be read
 * or lacks a field. It is never trusted: the engine counts as not installed, the cache as cold, and the
 * message (naming the file and the field) says why.
 */
export class NativeEngineFileError extends LitsError {
  constructor(
    readonly file: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super('NATIVE_ENGINE_FILE_INVALID', `${file}: ${problem}`, options);
  }
}

/** LITS_STRICT_TESTS=1 asks every native-engine test to run, and the engine is not there. */
export class NativeEngineRequiredError extends LitsError {
  constructor(message: string) {
    super('NATIVE_ENGINE_REQUIRED', message);
  }
}
