import { LitsError } from '@lits-ddp/errors';

/** An error answered by the MLflow server: carries MLflow's `error_code`, the HTTP status and the message. */
export class MlflowApiError extends LitsError {
  constructor(
    /** MLflow's `error_code` (`RESOURCE_DOES_NOT_EXIST`…), or ours: `BAD_RESPONSE`, `HTTP_<status>`. */
    readonly errorCode: string,
    readonly httpStatus: number,
    message: string,
    readonly endpoint: string,
  ) {
    super('MLFLOW_API', `${endpoint}: ${errorCode} (HTTP ${httpStatus}): ${message}`);
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
export class MlflowNetworkError extends LitsError {
  constructor(
    readonly endpoint: string,
    readonly delivered: false | 'unknown',
    readonly reason: string,
  ) {
    super('MLFLOW_UNREACHABLE', `${endpoint}: MLflow unreachable (${reason})`);
  }
}

/** Rejected on our side before sending, e.g. a key over MLflow's 250-character limit. */
export class MlflowValidationError extends LitsError {
  constructor(
    readonly field: string,
    message: string,
    code = 'MLFLOW_VALIDATION',
  ) {
    super(code, `${field}: ${message}`);
  }
}

/** A param was logged again with another value; MLflow params are immutable. */
export class MlflowParamConflictError extends MlflowValidationError {
  constructor(
    readonly key: string,
    readonly loggedValue: string,
    readonly newValue: string,
  ) {
    super(
      `param ${key}`,
      `already logged as "${loggedValue}", cannot change to "${newValue}"`,
      'MLFLOW_PARAM_CONFLICT',
    );
  }
}

export type EntryKind = 'metric' | 'param' | 'tag';

/**
 * The buffered logger dropped one entry because MLflow refused it for good (a param that conflicts
 * with its logged value, a key the server does not accept). Everything else is still delivered.
 */
export class MlflowRejectedEntryError extends LitsError {
  constructor(
    readonly kind: EntryKind,
    readonly key: string,
    /** The value that was refused (a metric's number, a param's or tag's string). */
    readonly value: string | number,
    /** Why, in MLflow's words or ours. */
    readonly reason: string,
    /** The metric's step, for a metric. */
    readonly step?: number,
    /** `cause`: the refusal of the request that held the entry (it may name another entry of it). */
    options?: { cause?: unknown },
  ) {
    const what = kind === 'metric' ? `metric "${key}" at step ${step}` : `${kind} "${key}"`;
    super(
      'MLFLOW_ENTRY_REJECTED',
      `MLflow refused ${what} (value ${JSON.stringify(value)}): ${reason}; dropped it`,
      options,
    );
  }
}

/** `log` was called while `maxPending` entries were still undelivered. Nothing was dropped. */
export class MlflowLoggerOverflowError extends LitsError {
  constructor(readonly limit: number) {
    super(
      'MLFLOW_LOGGER_OVERFLOW',
      `MLflow logger holds ${limit} undelivered entries (maxPending); refusing more rather than dropping data`,
    );
  }
}

/** The client is misconfigured: no tracking URI, or one that is not http(s)://host:port. */
export class MlflowConfigError extends LitsError {
  constructor(message: string) {
    super('MLFLOW_CONFIG_INVALID', message);
  }
}
