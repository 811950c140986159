import { LitsError } from '@lits-ddp/errors';

export interface FieldError {
  path: string;
  message: string;
}

/**
 * An answer of the coordinator the client cannot use: a non-2xx status (`errors` holds the field
 * errors of a 400), or a body that is not what the API promises (see CoordinatorResponseError).
 */
export class CoordinatorApiError extends LitsError {
  constructor(
    readonly status: number,
    message: string,
    readonly errors: FieldError[] = [],
    options: { code?: string; cause?: unknown } = {},
  ) {
    super(
      options.code ?? 'COORDINATOR_API_ERROR',
      message,
      options.cause !== undefined ? { cause: options.cause } : undefined,
    );
  }
}

/**
 * A 2xx answer whose body does not match the API's schema (a proxy's page, another version of the
 * coordinator): the message names the request and the first bad field.
 */
export class CoordinatorResponseError extends CoordinatorApiError {
  constructor(status: number, what: string, problem: string, cause?: unknown) {
    super(status, `${what}: unexpected answer: ${problem}`, [], {
      code: 'COORDINATOR_RESPONSE_INVALID',
      cause,
    });
  }
}

/** No answer at all: the coordinator is not there, or did not answer in time. */
export class CoordinatorUnreachableError extends LitsError {
  constructor(url: string, cause: unknown, detail: string) {
    super('COORDINATOR_UNREACHABLE', `cannot reach the coordinator at ${url}: ${detail}`, { cause });
  }
}
