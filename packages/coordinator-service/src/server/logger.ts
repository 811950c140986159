import type { FastifyRequest } from 'fastify';
import { pino, type Logger } from 'pino';

/** Query parameters whose value is a secret: `token`, `access_token`, `api_key`, `apiKey`, `password`, … */
const SECRET_PARAM = /token|secret|passw|api[-_]?key|auth|signature|credential|session/i;
const QUERY_PARAM = /([?&])([^=&#]*)=([^&#]*)/g;

/**
 * The URL with the value of every secret-looking query parameter replaced: EventSource cannot set
 * headers, so clients put tokens in the query string, and the request log must not keep them.
 */
export function redactUrl(url: string): string {
  if (!url.includes('?')) return url;
  return url.replace(QUERY_PARAM, (whole, sep: string, name: string) => {
    let decoded = name;
    try {
      decoded = decodeURIComponent(name);
    } catch {
      // A broken name is matched as sent.
    }
    return SECRET_PARAM.test(decoded) ? `${sep}${name}=[redacted]` : whole;
  });
}

/**
 * What Fastify logs of a request (its own serializer's fields), with the URL's secrets redacted. A
 * `req` logged by hand that is no request (no string url) passes as it is, to the redact paths.
 */
function requestFields(req: FastifyRequest | Record<string, unknown>): unknown {
  if (typeof req.url !== 'string' || !('socket' in req)) return req;
  const request = req as FastifyRequest;
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/**
 * pino with secrets redacted: authorization headers, cookies, tokens and passwords at any depth we
 * log, and secret query parameters of request URLs (`redactUrl`).
 */
export function createLogger(
  level = process.env.LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      level,
      base: { service: 'lits-coordinator' },
      serializers: { req: requestFields },
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
