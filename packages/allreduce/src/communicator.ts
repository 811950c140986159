import { endianness } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  CollectiveKeys,
  encodeAbortRecord,
  encodeProgressRecord,
  parseAbortRecord,
  type AbortRecord,
  type CollectiveOp,
} from '@lits-ddp/protocol';
import { errorMessage } from '@lits-ddp/errors';
import { ConnectionSet } from './connections.js';
import { diagnose, within } from './diagnosis.js';
import {
  CollectiveAbortedError,
  CollectiveArgumentError,
  CollectiveRedisError,
  CollectiveTimeoutError,
  CommunicatorClosedError,
  NonFiniteError,
  UnsupportedPlatformError,
  type WaitPoint,
} from './errors.js';
import {
  allReduceExactBody,
  allReduceRingBody,
  checkExactArgs,
  checkOut,
  LaneScratch,
  type ExactOptions,
  type ReduceOp,
} from './reduce.js';
import { OpRun, type OpHost } from './op-run.js';
import { resolveOptions, type CommunicatorOptions, type ResolvedOptions } from './options.js';
import { starAllGather, starBroadcast } from './star.js';
import { StatsRecorder, type CommunicatorStats, type OperationName } from './stats.js';
import { phaseName, type Hop } from './transport.js';
import { scanDelete } from './run-admin.js';

export interface AllReduceOptions {
  op?: ReduceOp;
  /** `ring` (default): fp32 ring, bit-identical across ranks for a fixed N. `exact`: see allReduceExact. */
  mode?: 'ring' | 'exact';
  /** Return NaN/Infinity results instead of throwing NonFiniteError. Default false. */
  allowNonFinite?: boolean;
  /** Write the result here (same length, not overlapping the input) instead of a new array. */
  out?: Float32Array;
}

const EMPTY = new Uint8Array(0);

function checkFloat32(x: unknown, what: string): Float32Array {
  if (!(x instanceof Float32Array)) {
    throw new TypeError(`${what} must be a Float32Array (got ${x === null ? 'null' : typeof x})`);
  }
  return x;
}

function checkBytes(x: unknown, what: string): Uint8Array {
  if (!(x instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array or Buffer`);
  return x;
}

/**
 * One rank's endpoint of a collective group over Redis. The k-th collective call on every rank is the same
 * collective (matched by a sequence number); calls may be issued without awaiting and run in call order.
 * After a timeout, an abort or a Redis failure the communicator stays failed: every later call rejects with the same
 * error, and the group restarts with a new generation.
 */
export class Communicator {
  readonly rank: number;
  readonly worldSize: number;
  readonly runId: string;
  readonly generation: number;
  private readonly keys: CollectiveKeys;
  private readonly host: OpHost;
  private readonly controller = new AbortController();
  private readonly failed: Promise<never>;
  private rejectFailed: (err: Error) => void = () => undefined;
  private failureError: Error | undefined;
  /** The timeout being diagnosed, if any: the watchdog and the server-side backstop share one verdict. */
  private verdict: Promise<void> | undefined;
  private closed = false;
  private nextSequence = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private current: OpRun | undefined;
  private pollInFlight = false;
  private readonly watch: NodeJS.Timeout;
  private readonly statsRecorder = new StatsRecorder();
  private readonly scratch = new LaneScratch();
  /** Fire-and-forget progress writes still in flight; close() lets them land first. */
  private readonly pendingWrites = new Set<Promise<unknown>>();

  private constructor(
    private readonly o: ResolvedOptions,
    private readonly connections: ConnectionSet,
  ) {
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.runId = o.runId;
    this.generation = o.generation;
    this.keys = new CollectiveKeys(o.runId, o.generation, o.keyPrefix);
    this.host = {
      rank: o.rank,
      worldSize: o.worldSize,
      chunkBytes: o.chunkBytes,
      keyTtlMs: o.keyTtlMs,
      keys: this.keys,
      connections,
      sendFailed: (err, to, hop) => this.sendFailed(err, to, hop),
    };
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject;
    });
    // `failed` is only raced against a running collective, which reports the error; idle, nobody awaits it.
    this.failed.catch(() => undefined);
    this.watch = setInterval(() => this.tick(), o.pollMs);
    this.watch.unref();
  }

  /** Validates the options and connects (a control connection per instance; data connections open on first use). */
  static async connect(options: CommunicatorOptions): Promise<Communicator> {
    if (endianness() !== 'LE')
      throw new UnsupportedPlatformError('@lits-ddp/allreduce needs a little-endian CPU');
    const o = resolveOptions(options);
    const self: { comm?: Communicator } = {};
    const connections = await ConnectionSet.open(o, async (wait) => {
      if (self.comm?.current) await self.comm.timedOut(wait.point, false);
    });
    self.comm = new Communicator(o, connections);
    return self.comm;
  }

  /** Aborted (with the error as reason) when this communicator fails; lets compute loops stop early. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get failure(): Error | undefined {
    return this.failureError;
  }

  /** Number of collectives started so far. */
  get sequence(): number {
    return this.nextSequence;
  }

  /** Element-wise sum / mean / max over ranks. Returns a new array, bitwise identical on every rank. */
  allReduce(x: Float32Array, options: AllReduceOptions = {}): Promise<Float32Array> {
    checkFloat32(x, 'allReduce input');
    const op = options.op ?? 'sum';
    if (op !== 'sum' && op !== 'mean' && op !== 'max')
      throw new TypeError(`allReduce: unknown op ${String(op)}`);
    const mode = options.mode ?? 'ring';
    if (mode !== 'ring' && mode !== 'exact') throw new TypeError(`allReduce: unknown mode ${String(mode)}`);
    if (mode === 'exact' && op !== 'max') {
      return this.allReduceExact([x], { totalContributions: this.worldSize, op, out: options.out });
    }
    const allow = options.allowNonFinite ?? false;
    const out = checkOut(options.out, x.length, [x], 'allReduce');
    return this.run('allReduce', `allreduce-${op}`, `allReduce(${op})`, (t) =>
      allReduceRingBody(t, x, op, allow, out),
    );
  }

  /**
   * Exact, order-independent sum (or mean) of every contribution on every rank: the same bits for any world size,
   * any grouping of contributions into ranks, any order, chunking and timing (see README for the error bound).
   * `totalContributions` is the number of contributions over all ranks and must be the same on every rank.
   */
  allReduceExact(contributions: readonly Float32Array[], options: ExactOptions): Promise<Float32Array> {
    const args = checkExactArgs(contributions, options, this.o);
    return this.run('allReduceExact', `exact-${args.op}`, `allReduceExact(${args.op})`, (t) =>
      allReduceExactBody(t, contributions, args, this.o, this.scratch),
    );
  }

  /** The root's bytes on every rank. Other ranks may pass undefined. */
  broadcast(data: Uint8Array | undefined, root: number): Promise<Buffer> {
    if (!Number.isSafeInteger(root) || root < 0 || root >= this.worldSize) {
      throw new RangeError(`broadcast: root must be a rank in [0, ${this.worldSize}) (got ${root})`);
    }
    if (this.rank === root) checkBytes(data, `broadcast: the data of root rank ${root}`);
    return this.run('broadcast', 'broadcast', `broadcast(root ${root})`, (t) => starBroadcast(t, root, data));
  }

  /** Every rank's bytes (sizes may differ), indexed by rank. */
  allGather(data: Uint8Array): Promise<Buffer[]> {
    checkBytes(data, 'allGather input');
    return this.run('allGather', 'allgather', 'allGather', (t) => starAllGather(t, 'star', data));
  }

  /** Resolves once every rank has entered the barrier. */
  barrier(): Promise<void> {
    return this.run('barrier', 'barrier', 'barrier', async (t) => {
      await starAllGather(t, 'star', EMPTY);
    });
  }

  /** Aborts the whole group: every waiter on every rank rejects within about one poll interval. */
  async abort(reason: string): Promise<void> {
    if (typeof reason !== 'string' || reason.length === 0) throw new TypeError('abort: give a reason');
    await this.publishAbort(reason, []);
    this.fail(
      new CollectiveAbortedError(`rank ${this.rank} aborted the group: ${reason}`, this.rank, reason),
    );
  }

  /** Bytes and time per kind of collective, for the worker to report. */
  stats(): CommunicatorStats {
    return this.statsRecorder.snapshot();
  }

  resetStats(): void {
    this.statsRecorder.reset();
  }

  /**
   * Deletes every key of this run generation on every instance. Call it once every other rank has closed (a rank
   * still running may write its progress record again); the coordinator can use cleanupRun instead. Each command
   * waits at most `timeoutS` for its reply.
   */
  async cleanup(): Promise<number> {
    let deleted = 0;
    for (let i = 0; i < this.connections.instanceCount; i++) {
      deleted += await scanDelete(this.connections.control(i), this.keys.pattern, {
        caller: `cleanup() on rank ${this.rank}`,
        redis: this.connections.describe(i),
        ms: this.o.timeoutMs,
      });
    }
    return deleted;
  }

  /**
   * Closes every connection; a running collective rejects. Progress writes still in flight land first (up to 1 s),
   * so once every rank has closed nothing more is written and `cleanupRun` leaves no key behind.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watch);
    if (this.current)
      this.fail(
        new CommunicatorClosedError(`rank ${this.rank}: the communicator was closed during a collective`),
      );
    await within(Promise.all(this.pendingWrites), 1000);
    this.connections.disconnectAll();
  }

  private run<T>(
    name: OperationName,
    op: CollectiveOp,
    label: string,
    body: (t: OpRun) => Promise<T>,
  ): Promise<T> {
    const result = this.tail.then(() => this.execute(name, op, label, body));
    // The caller gets the rejection through `result`; the chain only orders the calls, so the next one still runs.
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async execute<T>(
    name: OperationName,
    op: CollectiveOp,
    label: string,
    body: (t: OpRun) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new CommunicatorClosedError(`rank ${this.rank}: the communicator is closed`);
    if (this.failureError) throw this.failureError;
    const run = new OpRun(this.host, this.nextSequence++, op, label);
    this.current = run;
    const started = performance.now();
    this.reportProgress(run, 'entered');
    try {
      const value = await Promise.race([body(run), this.failed]);
      this.reportProgress(run, 'done');
      return value;
    } catch (err) {
      if (this.failureError) throw this.failureError;
      if (err instanceof NonFiniteError || err instanceof CollectiveArgumentError) throw err;
      // Anything else (a malformed message, a local bug) leaves the ranks out of step: stop the whole group.
      const error = err instanceof Error ? err : new Error(String(err));
      await this.publishAbort(`rank ${this.rank}: ${error.message}`, []);
      this.fail(error);
      throw error;
    } finally {
      this.current = undefined;
      this.statsRecorder.record(name, performance.now() - started, run.bytesSent, run.bytesReceived);
    }
  }

  private fail(err: Error): void {
    if (this.failureError) return;
    this.failureError = err;
    this.rejectFailed(err);
    this.controller.abort(err);
    this.connections.dropData();
  }

  private reportProgress(run: OpRun, state: 'entered' | 'done'): void {
    if (this.worldSize === 1) return;
    const record = encodeProgressRecord({ sequence: run.sequence, label: run.label, state, at: Date.now() });
    const control = this.connections.control();
    const write = control
      .multi()
      .hset(this.keys.progress, String(this.rank), record)
      .pexpire(this.keys.progress, this.o.keyTtlMs)
      .exec();
    const pending = within(write, this.o.timeoutMs);
    this.pendingWrites.add(pending);
    void pending.finally(() => this.pendingWrites.delete(pending));
  }

  private async publishAbort(reason: string, suspects: number[]): Promise<void> {
    const record: AbortRecord = {
      by: this.rank,
      reason,
      at: Date.now(),
      generation: this.generation,
      suspects,
    };
    const set = this.connections
      .control()
      .set(this.keys.abort, encodeAbortRecord(record), 'PX', this.o.keyTtlMs, 'NX');
    await within(set, 1000);
  }

  private tick(): void {
    if (this.failureError || this.closed) return;
    const run = this.current;
    if (run && !this.verdict) {
      const now = performance.now();
      const wait = this.connections.stuckWait(now, this.o.timeoutMs);
      if (wait) void this.timedOut(wait.point, false);
      else {
        const send = run.stuckSend(now, this.o.timeoutMs);
        if (send) {
          const point = { operation: run.label, sequence: run.sequence, ...send.hop, from: send.to };
          void this.timedOut(point, true);
        }
      }
    }
    this.pollAbort();
  }

  private pollAbort(): void {
    if (this.pollInFlight || !this.connections.health(0).ready) return;
    this.pollInFlight = true;
    void within(this.connections.control().get(this.keys.abort), this.o.timeoutMs)
      .then((text) => {
        if (text) this.abortSeen(text);
      })
      .finally(() => {
        this.pollInFlight = false;
      });
  }

  private abortSeen(text: string): void {
    if (this.failureError) return;
    let record: AbortRecord;
    try {
      record = parseAbortRecord(text, this.keys.abort);
    } catch (err) {
      // Still an abort (the key exists): it fails the group, with the reason saying the record was unreadable.
      record = { by: 'unknown', reason: errorMessage(err), at: Date.now(), generation: this.generation };
    }
    const who = typeof record.by === 'number' ? `rank ${record.by}` : record.by;
    const run = this.current;
    const where = run ? `${run.label} #${run.sequence} on rank ${this.rank}` : `rank ${this.rank}`;
    const message = `${where}: the group was aborted by ${who}: ${record.reason}`;
    this.fail(new CollectiveAbortedError(message, record.by, record.reason, record.suspects ?? []));
  }

  /** Diagnoses a stuck wait or push and fails the communicator with it; one verdict per communicator. */
  private timedOut(point: WaitPoint, sending: boolean): Promise<void> {
    if (this.failureError) return Promise.resolve();
    this.verdict ??= this.judge(point, sending);
    return this.verdict;
  }

  private async judge(point: WaitPoint, sending: boolean): Promise<void> {
    const health = this.connections.health(0);
    const seconds = this.o.timeoutMs / 1000;
    // The instance carrying the message: the sender's outbox.
    const instance = this.connections.instanceOf(sending ? this.rank : point.from);
    const carrier = this.connections.health(instance);
    const diagnosis = !carrier.ready
      ? {
          suspects: [],
          detail:
            `Redis ${this.connections.describe(instance)} is unreachable` +
            (carrier.lastError ? `: ${carrier.lastError.message}` : ''),
        }
      : sending
        ? { suspects: [], detail: `Redis ${this.connections.describe(instance)} did not acknowledge a push` }
        : await diagnose({
            control: this.connections.control(),
            controlReady: health.ready,
            redisName: this.connections.describe(0),
            redisError: health.lastError,
            runId: this.runId,
            generation: this.generation,
            progressKey: this.keys.progress,
            rank: this.rank,
            worldSize: this.worldSize,
            sequence: point.sequence,
            label: point.operation,
            waitingFor: point.from,
            budgetMs: 500,
          });
    const where = `${phaseName(point.phase)} step ${point.step}, chunk ${point.chunk}`;
    const target = sending ? `pushing to rank ${point.from}` : `waiting for rank ${point.from}`;
    const message =
      `${point.operation} #${point.sequence} timed out on rank ${this.rank} after ${seconds} s ${target} ` +
      `(${where}): ${diagnosis.detail}`;
    const err = new CollectiveTimeoutError(message, point, this.rank, this.o.timeoutMs, diagnosis.suspects);
    if (health.ready) await this.publishAbort(message, diagnosis.suspects);
    this.fail(err);
  }

  private sendFailed(err: unknown, to: number, hop: Hop): void {
    if (this.failureError) return;
    const run = this.current;
    const where = run ? `${run.label} #${run.sequence}` : 'a collective';
    const message = `${where}: rank ${this.rank} could not push its ${phaseName(hop.phase)} chunk ${hop.chunk} for rank ${to}: ${errorMessage(err)}`;
    void this.publishAbort(message, []);
    this.fail(new CollectiveRedisError(message, { cause: err }));
  }
}
