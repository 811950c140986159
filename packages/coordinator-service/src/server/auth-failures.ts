import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TypedApp } from './app-context.js';

/** Past this many tracked addresses, expired entries are swept before a new one is added. */
const SWEEP_AT = 10_000;

/**
 * Failed authentications per client address in a fixed window. Guessing tokens is what it stops, so
 * only 401s count: a client with a valid token never adds to it, and its requests go to the normal
 * per-token rate limit. Held in memory: each coordinator process limits what it sees.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { failures: number; resetAt: number }>();

  constructor(
    readonly max: number,
    readonly windowMs: number,
  ) {}

  /** Seconds until `address` may try again, or 0 when it is under the limit. */
  retryAfterS(address: string, now = Date.now()): number {
    const w = this.windows.get(address);
    if (!w || w.resetAt <= now) return 0;
    return w.failures >= this.max ? Math.ceil((w.resetAt - now) / 1000) : 0;
  }

  recordFailure(address: string, now = Date.now()): void {
    const w = this.windows.get(address);
    if (w && w.resetAt > now) {
      w.failures += 1;
      return;
    }
    if (this.windows.size >= SWEEP_AT)
      for (const [key, old] of this.windows) if (old.resetAt <= now) this.windows.delete(key);
    this.windows.set(address, { failures: 1, resetAt: now + this.windowMs });
  }
}

/**
 * Hooks on the token-protected scope, added before the bearer-auth hook: an address over its
 * failure limit gets 429 (documented format, Retry-After) before its token is even looked at, so
 * the answer says nothing about whether the token was right.
 */
export function limitFailedAuth(scope: TypedApp, limiter: AuthFailureLimiter): void {
  scope.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const retryAfter = limiter.retryAfterS(req.ip);
    if (retryAfter === 0) return;
    return reply
      .code(429)
      .header('retry-after', String(retryAfter))
      .send({
        statusCode: 429,
        error: 'Too Many Requests',
        message: `too many failed authentications from this address; retry in ${retryAfter} s`,
      });
  });
  scope.addHook('onResponse', async (req, reply) => {
    if (reply.statusCode === 401) limiter.recordFailure(req.ip);
  });
}
