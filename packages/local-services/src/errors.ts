import { LitsError } from '@lits-ddp/errors';

/**
 * A server or tool could not be installed or found: not root, no apt-get, a failed apt-get or pip, a binary still
 * missing afterwards. The message says what to run instead.
 */
export class InstallError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INSTALL_FAILED', message, options);
  }
}

/** A server did not become healthy (it exited, or timed out), or a test service is unavailable under CI=true. */
export class ServiceUnavailableError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SERVICE_UNAVAILABLE', message, options);
  }
}
