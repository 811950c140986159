import { pino, type Logger } from 'pino';

/** pino with secrets redacted: authorization headers, cookies, tokens and passwords at any depth we log. */
export function createLogger(
  level = process.env.LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      level,
      base: { service: 'lits-coordinator' },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'headers.authorization',
          'authorization',
          '*.token',
          '*.password',
          '*.tokens',
          'token',
          'tokens',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/**
 * Without a listener ioredis prints each failed reconnect to stderr (and BullMQ's queue does the
 * same): log it once per outage instead, as JSON like every other line.
 */
export function logConnectionErrors(
  emitter: { on(event: 'error' | 'ready', fn: (err?: Error) => void): unknown },
  log: Logger,
  client: string,
): void {
  let last = '';
  emitter.on('error', (err) => {
    if (!err || err.message === last) return;
    last = err.message;
    log.warn({ err, client }, 'Redis connection error');
  });
  emitter.on('ready', () => {
    if (last) log.info({ client }, 'Redis connection back');
    last = '';
  });
}
