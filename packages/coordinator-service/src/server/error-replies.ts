import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { redisOutageOf } from '../errors.js';

/** One entry per field; a union of literals reports every alternative, so it is said once. */
function fieldErrors(err: FastifyError): Array<{ path: string; message: string }> {
  const where = err.validationContext ?? 'request';
  const byPath = new Map<string, string>();
  for (const v of err.validation ?? []) {
    const missing = (v.params as { missingProperty?: string }).missingProperty;
    const path = `${v.instancePath}${missing ? `/${missing}` : ''}` || '/';
    const message =
      v.keyword === 'const' || v.keyword === 'anyOf'
        ? 'must be one of the allowed values'
        : (v.message ?? 'invalid');
    if (!byPath.has(path) || v.keyword === 'anyOf') byPath.set(path, `${where}: ${message}`);
  }
  return [...byPath].map(([path, message]) => ({ path, message }));
}

/**
 * The error handler: every error becomes the documented `{statusCode, error, message, errors?}`.
 * Schema failures are 400 with one entry per field; errors that carry a 4xx status keep it; a
 * Redis outage (as `redisOutageOf` recognises it on `connection`) is 503 so clients retry; anything
 * else is logged and answered 500 with the request id, never with its message.
 */
export function errorReplies(connection: {
  status: string;
}): (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => FastifyReply {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (err.validation) {
      const errors = fieldErrors(err);
      return reply.code(400).send({
        statusCode: 400,
        error: 'Bad Request',
        message: errors.map((e) => `${e.path} ${e.message}`).join('; '),
        errors,
      });
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status < 500)
      return reply
        .code(status)
        .send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', message: err.message });
    req.log.error({ err }, 'request failed');
    const outage = redisOutageOf(err, connection);
    const code = outage ? 503 : 500;
    return reply.code(code).send({
      statusCode: code,
      error: STATUS_CODES[code] as string,
      message: outage ? 'Redis is unreachable; retry later' : `internal error (request ${req.id})`,
    });
  };
}

/** At most this much of a refused path is echoed: enough to recognise it, never the whole of a long one. */
const ECHOED_PATH = 64;
const pathPrefix = (url: string): string => {
  const path = url.split('?')[0] ?? '';
  return path.length > ECHOED_PATH ? `${path.slice(0, ECHOED_PATH)}… (${path.length} characters)` : path;
};

/**
 * Errors the router raises before any route (hence before auth, which belongs to the routes): a
 * path part over the longest parameter is 414, broken percent-encoding 400; both in the documented
 * format and echoing only the start of the path.
 */
export function frameworkErrorReply(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH')
    void reply.code(414).send({
      statusCode: 414,
      error: 'URI Too Long',
      message: `a path part is over 256 characters: ${pathPrefix(req.url)}`,
    });
  else if (err.code === 'FST_ERR_BAD_URL')
    void reply.code(400).send({
      statusCode: 400,
      error: 'Bad Request',
      message: `the path is not valid percent-encoding: ${pathPrefix(req.url)}`,
    });
  else {
    req.log.error({ err }, 'request failed');
    void reply.code(500).send({
      statusCode: 500,
      error: 'Internal Server Error',
      message: `internal error (request ${req.id})`,
    });
  }
}

/** 404 in the same format, naming the method and path. */
export function notFoundReply(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.code(404).send({
    statusCode: 404,
    error: 'Not Found',
    message: `no route ${req.method} ${req.url.split('?')[0]}`,
  });
}
