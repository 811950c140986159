import type { Redis } from 'ioredis';
import { errorMessage } from '@lits-ddp/errors';

/** What an outage line carries besides its message (a pino logger takes these as its structured fields). */
export interface RedisOutageFields {
  /** The connection that failed first, e.g. `worker`, `api`, `collective control`. */
  redisRole: string;
  /** Why, e.g. `connect ECONNREFUSED 127.0.0.1:6379`. */
  reason: string;
  /** On the end line: how long Redis was unreachable. */
  downS?: number;
}

/** Where outage lines go: a pino logger fits as it is; `redisOutageLines` adapts a plain line log. */
export interface RedisOutageLog {
  warn(fields: RedisOutageFields, message: string): void;
  info(fields: RedisOutageFields, message: string): void;
}

/** Anything that reports a connection's failures and recoveries (a BullMQ backend, a thread's relay). */
export interface RedisEventSource {
  on(event: 'error' | 'ready', listener: (arg?: unknown) => void): unknown;
}

/** Writes outage lines as plain text, for processes that log lines (the worker, the CLI). */
export function redisOutageLines(write: (line: string) => void): RedisOutageLog {
  return { warn: (_fields, message) => write(message), info: (_fields, message) => write(message) };
}

/** Socket errors that mean "Redis cannot be reached", as opposed to an error of one command. */
const UNREACHABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/**
 * True for an error that says Redis is unreachable: a socket error (connect refused, reset, timed out, unknown host)
 * or a command that ioredis gave up after its reconnect retries. Not "Connection is closed.", which a connection we
 * closed ourselves also gives.
 */
export function isRedisUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && UNREACHABLE_ERRNO.has(code)) return true;
  // Node's happy-eyeballs connect (a host name with several addresses) wraps the per-address errors.
  return err instanceof AggregateError && err.errors.some(isRedisUnreachable);
}

const reasonOf = (err: unknown): string => {
  const message = errorMessage(err);
  if (message) return message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (err instanceof Error ? err.name : 'unknown error');
};

interface Outage {
  since: number;
  role: string;
  reason: string;
}

/**
 * One process's view of its Redis: an outage begins with the first failure of any followed connection and ends with
 * the first connection that is ready again after that (the others reconnect on their next attempt), and each logs
 * one line. ioredis reports every failed reconnect attempt as an 'error' (and prints a stack trace for a client
 * without a listener, which `.duplicate()` clients are); following a connection gives it a listener and folds those
 * attempts into the outage. Not "every failed connection is back": a connection closed during the outage never says
 * so (ioredis emits no 'end' for a client closed while it waits to reconnect).
 */
export class RedisOutageTracker {
  /** How many followed connections have each role: `absorbs` begins an outage only for a followed role. */
  private readonly roles = new Map<string, number>();
  private current: Outage | undefined;
  private waitingForOutage: (() => void)[] = [];

  constructor(
    private log: RedisOutageLog = redisOutageLines((line) => process.stderr.write(`${line}\n`)),
    private readonly now: () => number = Date.now,
  ) {}

  /** The outage in progress: since when, which connection failed first and why. */
  get outage(): Readonly<Outage> | undefined {
    return this.current;
  }

  /** Resolves while Redis is unreachable: at once during an outage, else when the next one begins. */
  unreachable(): Promise<void> {
    if (this.current) return Promise.resolve();
    return new Promise((resolve) => this.waitingForOutage.push(resolve));
  }

  /** Sends the lines to `log` from now on; the returned function puts the previous log back. */
  logTo(log: RedisOutageLog): () => void {
    const previous = this.log;
    this.log = log;
    return () => {
      if (this.log === log) this.log = previous;
    };
  }

  /** Follows an ioredis connection as `role` (e.g. `worker inbox`) and returns it. */
  follow<C extends Redis>(connection: C, role: string): C {
    this.followEvents(connection, role);
    connection.once('end', () => this.roles.set(role, (this.roles.get(role) ?? 1) - 1));
    return connection;
  }

  /** Follows anything that emits a connection's 'error' and 'ready' events, as `role`. */
  followEvents(events: RedisEventSource, role: string): void {
    this.roles.set(role, (this.roles.get(role) ?? 0) + 1);
    events.on('error', (err) => this.failed(role, err));
    events.on('ready', () => this.ready());
  }

  /**
   * For an 'error' seen somewhere else (a BullMQ worker's, a failed command): true when it is part of an outage,
   * which it begins when `role` is followed (the connection's next 'ready' ends it), so the caller need not log it;
   * false for anything else, which the caller logs as before.
   */
  absorbs(err: unknown, role: string): boolean {
    if (this.current && (isRedisUnreachable(err) || errorMessage(err) === 'Connection is closed.'))
      return true;
    if (!isRedisUnreachable(err) || !this.roles.get(role)) return false;
    this.failed(role, err);
    return true;
  }

  private failed(role: string, err: unknown): void {
    if (this.current) return;
    const outage: Outage = { since: this.now(), role, reason: reasonOf(err) };
    this.current = outage;
    this.log.warn(
      { redisRole: role, reason: outage.reason },
      `Redis unreachable (${role} connection: ${outage.reason}); reconnecting, logged once until it is back`,
    );
    const waiting = this.waitingForOutage;
    this.waitingForOutage = [];
    for (const resolve of waiting) resolve();
  }

  private ready(): void {
    const outage = this.current;
    if (!outage) return;
    this.current = undefined;
    const downS = Math.round((this.now() - outage.since) / 100) / 10;
    this.log.info(
      { redisRole: outage.role, reason: outage.reason, downS },
      `Redis reachable again after ${downS.toFixed(1)} s`,
    );
  }
}

/**
 * The tracker of this process (of this thread: a worker thread relays its connection's events to the main thread).
 * Kept on globalThis so that two copies of this module in one process (a bundle, a test runner loading sources
 * beside builds) still log one outage once.
 */
export const redisOutages: RedisOutageTracker = (() => {
  const key = Symbol.for('@lits-ddp/allreduce.redisOutages');
  const shared = globalThis as { [key]?: RedisOutageTracker };
  return (shared[key] ??= new RedisOutageTracker());
})();
