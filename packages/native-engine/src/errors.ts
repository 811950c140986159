/** What stood in the way; a caller can branch on it (e.g. fall back to the cpu engine on any of them). */
export type NativeEngineRequirement =
  | 'linux-x64'
  | '@tensorflow/tfjs-node'
  | 'python3'
  | 'pip'
  | 'g++'
  | 'make'
  | 'node-headers'
  | 'wheel-download'
  | 'wheel-sha256'
  | 'wheel-extract'
  | 'addon-build'
  | 'load-check';

/**
 * The native engine cannot be provisioned here. The message says what is missing, then how to get it
 * (`remedy`, also on its own), then any tool output (`detail`: the last lines of pip, node-gyp or the
 * load check).
 */
export class NativeEngineUnavailableError extends Error {
  override readonly name = 'NativeEngineUnavailableError';

  constructor(
    readonly missing: NativeEngineRequirement,
    problem: string,
    readonly remedy: string,
    readonly detail?: string,
  ) {
    super(`${problem}. ${remedy}${detail ? `\n${detail}` : ''}`);
  }
}
