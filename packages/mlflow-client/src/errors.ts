/** An error answered by the MLflow server: carries MLflow's `error_code`, the HTTP status and the message. */
export class MlflowApiError extends Error {
  override readonly name = 'MlflowApiError';
  constructor(
    readonly errorCode: string,
    readonly httpStatus: number,
    message: string,
    readonly endpoint: string,
  ) {
    super(`${endpoint}: ${errorCode} (HTTP ${httpStatus}): ${message}`);
  }

  get isNotFound(): boolean {
    return (
      this.errorCode === 'RESOURCE_DOES_NOT_EXIST' ||
      this.errorCode === 'NOT_FOUND' ||
      this.httpStatus === 404
    );
  }

  get isInvalidParameter(): boolean {
    return this.errorCode === 'INVALID_PARAMETER_VALUE' || this.errorCode === 'BAD_REQUEST';
  }

  get isAlreadyExists(): boolean {
    return this.errorCode === 'RESOURCE_ALREADY_EXISTS' || this.errorCode === 'ALREADY_EXISTS';
  }

  /** Worth retrying: rate limits and server-side trouble, never a rejected request. */
  get isRetryable(): boolean {
    return (
      this.httpStatus === 429 ||
      this.httpStatus >= 500 ||
      this.errorCode === 'TEMPORARILY_UNAVAILABLE' ||
      this.errorCode === 'REQUEST_LIMIT_EXCEEDED' ||
      this.errorCode === 'RESOURCE_EXHAUSTED'
    );
  }
}

/**
 * The server could not be reached or gave no answer. `delivered` tells whether the request may have
 * reached the server: false when the connection was refused (it surely did not), 'unknown' otherwise.
 */
export class MlflowNetworkError extends Error {
  override readonly name = 'MlflowNetworkError';
  constructor(
    readonly endpoint: string,
    readonly delivered: false | 'unknown',
    readonly reason: string,
  ) {
    super(`${endpoint}: MLflow unreachable (${reason})`);
  }
}

/** Rejected on our side before sending, e.g. a key over MLflow's 250-character limit. */
export class MlflowValidationError extends Error {
  override readonly name = 'MlflowValidationError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}
