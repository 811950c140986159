import { Redis, type RedisOptions } from 'ioredis';
import { collectiveClientName, type ConnectionRole } from '@lits-ddp/protocol';
import { errorMessage } from '@lits-ddp/errors';
import { CommunicatorClosedError, RedisCommandError, RedisUnavailableError } from './errors.js';
import type { RedisEndpoint, ResolvedOptions } from './options.js';
import { Receiver, type PendingWait } from './receiver.js';
import { redisOutages } from './redis-outages.js';

/** A URL or host:port without credentials, for messages. */
export function describeEndpoint(e: RedisEndpoint): string {
  if (typeof e === 'string') {
    try {
      const u = new URL(e);
      return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
    } catch {
      // Only a message is built from it; resolveOptions has already refused a string that is not a redis:// URL.
      return '(invalid Redis URL)';
    }
  }
  if (e.path) return e.path;
  return `${e.host ?? '127.0.0.1'}:${e.port ?? 6379}`;
}

/**
 * Opens one ioredis connection with our settings: named, retrying forever; our own timeouts bound every wait. The
 * process's `redisOutages` follows it as `role`, so its failed reconnect attempts make one outage line, not one each.
 */
export function openConnection(
  e: RedisEndpoint,
  name: string | undefined,
  onError: (e: Error) => void,
  role = 'collective admin',
): Redis {
  const ours: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(50 * times, 500),
  };
  const conn = typeof e === 'string' ? new Redis(e, ours) : new Redis({ ...e, ...ours });
  conn.on('error', onError);
  return redisOutages.follow(conn, role);
}

export function waitReady(conn: Redis, what: string, timeoutMs: number, lastError: () => Error | undefined) {
  if (conn.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.off('ready', onReady);
      const cause = lastError();
      reject(
        new RedisUnavailableError(
          what,
          `cannot connect to Redis ${what} within ${timeoutMs / 1000} s${cause ? `: ${cause.message}` : ''}`,
          cause ? { cause } : undefined,
        ),
      );
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    conn.once('ready', onReady);
  });
}

/** Who is asking and where, for the error when a reply does not come. */
export interface CommandDeadline {
  /** The calling operation, e.g. `cleanupRun`. */
  caller: string;
  /** The Redis instance, without credentials. */
  redis: string;
  ms: number;
}

/**
 * The reply of one command, or a rejection naming the caller, the command and the Redis instance after `d.ms`
 * (our connections retry forever and queue commands while Redis is down, so without this a dead Redis hangs us).
 */
export function replyWithin<T>(reply: Promise<T>, command: string, d: CommandDeadline): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new RedisCommandError(
          `${d.caller}: Redis ${d.redis} did not answer ${command} within ${d.ms / 1000} s`,
        ),
      );
    }, d.ms);
    reply.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(
          new RedisCommandError(`${d.caller}: ${command} on Redis ${d.redis} failed: ${errorMessage(err)}`, {
            cause: err,
          }),
        );
      },
    );
  });
}

/**
 * Refuses a Redis Cluster node. Cluster would need every key of one ring edge in one hash slot, per-node liveness
 * checks and per-node cleanup; independent instances give the same spread of ring edges (README, "Several instances").
 */
export async function refuseCluster(conn: Redis, field: string, d: CommandDeadline): Promise<void> {
  const info = await replyWithin(conn.info('cluster'), 'INFO cluster', d);
  if (/^cluster_enabled:1\s*$/m.test(info)) {
    throw new RedisUnavailableError(
      d.redis,
      `${field}: Redis ${d.redis} runs in cluster mode, and Redis Cluster is not supported; ` +
        'give one or more independent (non-cluster) instances instead',
    );
  }
}

/**
 * The connections of one rank. Instance i of M carries the outbox of every rank r with r mod M = i, so the ring edge
 * r -> r+1 lives on instance r mod M and edges spread over all instances. Per rank: one control connection per
 * instance (abort polling, progress, diagnosis, cleanup), one send connection (own outbox instance), and one
 * blocking receive connection per instance it pops from (the ring needs one; broadcast and all-gather up to M).
 */
export class ConnectionSet {
  private readonly controls: Redis[];
  private readonly lastErrors: (Error | undefined)[];
  private sendConnection: Redis | undefined;
  private readonly receivers = new Map<number, Receiver>();
  private dropped = false;

  private constructor(
    private readonly o: ResolvedOptions,
    private readonly onServerTimeout: (wait: PendingWait) => Promise<void>,
  ) {
    this.lastErrors = o.endpoints.map(() => undefined);
    this.controls = o.endpoints.map((e, i) => this.open(i, 'control'));
  }

  static async open(
    o: ResolvedOptions,
    onServerTimeout: (wait: PendingWait) => Promise<void>,
  ): Promise<ConnectionSet> {
    const set = new ConnectionSet(o, onServerTimeout);
    try {
      await Promise.all(
        set.controls.map(async (c, i) => {
          const redis = describeEndpoint(o.endpoints[i] as RedisEndpoint);
          await waitReady(c, redis, o.timeoutMs, () => set.lastErrors[i]);
          const field = `CommunicatorOptions.redis[${i}]`;
          await refuseCluster(c, field, { caller: 'Communicator.connect', redis, ms: o.timeoutMs });
        }),
      );
    } catch (err) {
      set.disconnectAll();
      throw err;
    }
    return set;
  }

  get instanceCount(): number {
    return this.controls.length;
  }

  /** The instance holding the outbox of `rank`. */
  instanceOf(rank: number): number {
    return rank % this.controls.length;
  }

  control(instance = 0): Redis {
    return this.controls[instance] as Redis;
  }

  describe(instance: number): string {
    return describeEndpoint(this.o.endpoints[instance] as RedisEndpoint);
  }

  /** Connection status and last error of an instance, for diagnosis. */
  health(instance: number): { ready: boolean; lastError: Error | undefined } {
    return { ready: this.control(instance).status === 'ready', lastError: this.lastErrors[instance] };
  }

  sender(): Redis {
    this.checkUsable();
    this.sendConnection ??= this.open(this.instanceOf(this.o.rank), 'send');
    return this.sendConnection;
  }

  receiver(instance: number): Receiver {
    this.checkUsable();
    let r = this.receivers.get(instance);
    if (!r) {
      const blockS = Math.ceil(this.o.timeoutMs / 1000) + 10;
      r = new Receiver(this.open(instance, `recv${instance}`), blockS, this.onServerTimeout);
      this.receivers.set(instance, r);
    }
    return r;
  }

  /** The first wait that has made no progress for longer than `timeoutMs`. */
  stuckWait(now: number, timeoutMs: number): PendingWait | undefined {
    for (const r of this.receivers.values()) {
      const head = r.head();
      if (head?.since !== undefined && now - head.since > timeoutMs) return head;
    }
    return undefined;
  }

  /** After a failure: closes the data connections, which rejects every queued pop and push at once. */
  dropData(): void {
    this.dropped = true;
    this.sendConnection?.disconnect();
    for (const r of this.receivers.values()) r.connection.disconnect();
  }

  disconnectAll(): void {
    this.dropData();
    for (const c of this.controls) c.disconnect();
  }

  private checkUsable(): void {
    if (this.dropped)
      throw new CommunicatorClosedError('the communicator has failed; its data connections are closed');
  }

  private open(instance: number, role: ConnectionRole): Redis {
    const name = collectiveClientName(this.o.runId, this.o.generation, this.o.rank, role);
    const endpoint = this.o.endpoints[instance] as RedisEndpoint;
    const onError = (e: Error): void => {
      this.lastErrors[instance] = e;
    };
    return openConnection(endpoint, name, onError, `collective ${role}`);
  }
}
