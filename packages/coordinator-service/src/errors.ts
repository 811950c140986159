import { isRedisUnreachable } from '@lits-ddp/allreduce';
import { LitsError } from '@lits-ddp/errors';

/**
 * A request the API refuses on purpose. Fastify's error handler answers `statusCode` with the
 * message, in the documented error format.
 */
export class ApiRequestError extends LitsError {
  constructor(
    readonly statusCode: 400 | 404 | 409,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

/** No such experiment, or no such file of its model. */
export class NotFoundError extends ApiRequestError {
  constructor(message: string) {
    super(404, 'NOT_FOUND', message);
  }
}

/** The request contradicts what is stored: an id or Idempotency-Key reused, an experiment already over. */
export class ConflictError extends ApiRequestError {
  constructor(message: string) {
    super(409, 'CONFLICT', message);
  }
}

/** A request body that is not the JSON the API reads: empty, malformed, or carrying a forbidden key. */
export class BadBodyError extends ApiRequestError {
  constructor(message: string) {
    super(400, 'BODY_INVALID', message);
  }
}

/** The coordinator's settings (flags, environment, token file) cannot be used. */
export class CoordinatorConfigError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('COORDINATOR_CONFIG_INVALID', message, options);
  }
}

/** A Redis command failed because Redis cannot be reached: the API answers 503 and the client retries. */
export class RedisUnavailableError extends LitsError {
  constructor(cause: unknown) {
    super('REDIS_UNAVAILABLE', 'Redis is unreachable', { cause });
  }
}

/** ioredis' message when a command meets a connection that has ended (utils CONNECTION_CLOSED_ERROR_MSG). */
const CONNECTION_CLOSED = 'Connection is closed.';
/** ioredis' message when a command meets a disconnected client that queues nothing. */
const NOT_WRITEABLE = "Stream isn't writeable and enableOfflineQueue options is false";

/**
 * The RedisUnavailableError that `err` stands for, or undefined when it is something else. Only what
 * ioredis raises for an outage counts: a command given up after its retries (MaxRetriesPerRequestError,
 * which ioredis does not export, hence the name), a closed or unwritable connection, or a socket error
 * while `connection` is not ready. A message that merely mentions "connect" is not an outage.
 */
export function redisOutageOf(
  err: unknown,
  connection: { status: string },
): RedisUnavailableError | undefined {
  if (err instanceof RedisUnavailableError) return err;
  if (!(err instanceof Error)) return undefined;
  if (err.name === 'MaxRetriesPerRequestError') return new RedisUnavailableError(err);
  if (err.message === CONNECTION_CLOSED || err.message === NOT_WRITEABLE)
    return new RedisUnavailableError(err);
  // A socket error of a connection that is up is about one command, not an outage.
  if (isRedisUnreachable(err) && connection.status !== 'ready') return new RedisUnavailableError(err);
  return undefined;
}
