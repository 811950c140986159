import { LitsError } from '@lits-ddp/errors';

/** A bad command line (unknown flag, missing value, out-of-range number): the command exits 2 with its usage. */
export class UsageError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE_INVALID', message, options);
  }
}

/** No REDIS_URL and no redis-server on PATH to embed: the message says how to install one. */
export class RedisUnavailableError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('REDIS_UNAVAILABLE', message, options);
  }
}
