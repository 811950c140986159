import { performance } from 'node:perf_hooks';
import type { CollectiveKeys, CollectiveOp } from '@lits-ddp/protocol';
import type { ConnectionSet } from './connections.js';
import { RedisCommandError, type WaitPoint } from './errors.js';
import type { Hop, OpTransport } from './transport.js';

/** A push that Redis has not acknowledged yet. */
export interface PendingSend {
  since: number;
  to: number;
  hop: Hop;
}

export interface OpHost {
  readonly rank: number;
  readonly worldSize: number;
  readonly chunkBytes: number;
  readonly keyTtlMs: number;
  readonly keys: CollectiveKeys;
  readonly connections: ConnectionSet;
  /** A push failed: the group can no longer complete this collective. */
  sendFailed(err: unknown, to: number, hop: Hop): void;
}

/** One running collective: its sequence number, transport and byte counters. */
export class OpRun implements OpTransport {
  bytesSent = 0;
  bytesReceived = 0;
  private readonly acks: Promise<void>[] = [];
  private readonly pending = new Set<PendingSend>();

  constructor(
    private readonly host: OpHost,
    readonly sequence: number,
    readonly op: CollectiveOp,
    readonly label: string,
  ) {}

  get rank(): number {
    return this.host.rank;
  }

  get worldSize(): number {
    return this.host.worldSize;
  }

  get chunkBytes(): number {
    return this.host.chunkBytes;
  }

  private key(from: number, to: number, hop: Hop): string {
    return this.host.keys.message({ sequence: this.sequence, op: this.op, ...hop, from, to });
  }

  send(to: number, hop: Hop, payload: Uint8Array): void {
    const key = this.key(this.rank, to, hop);
    const entry: PendingSend = { since: performance.now(), to, hop };
    this.pending.add(entry);
    this.bytesSent += payload.byteLength;
    const body = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const ack = this.host.connections
      .sender()
      .multi()
      .rpush(key, body)
      .pexpire(key, this.host.keyTtlMs)
      .exec()
      .then((replies) => {
        const failed = replies?.find(([err]) => err)?.[0];
        if (!replies || failed) throw failed ?? new RedisCommandError(`the push to ${key} was discarded`);
        this.pending.delete(entry);
      });
    // The failure reaches the caller through sendFailed (it fails the communicator) and through flush().
    ack.catch((err: unknown) => this.host.sendFailed(err, to, hop));
    this.acks.push(ack);
  }

  recv(from: number, hop: Hop): Promise<Buffer> {
    const point: WaitPoint = { operation: this.label, sequence: this.sequence, ...hop, from };
    const instance = this.host.connections.instanceOf(from);
    return this.host.connections
      .receiver(instance)
      .pop(this.key(from, this.rank, hop), point)
      .then((buf) => {
        this.bytesReceived += buf.byteLength;
        return buf;
      });
  }

  async flush(): Promise<void> {
    const acks = this.acks.splice(0);
    await Promise.all(acks);
  }

  /** The oldest push still waiting for Redis, if older than `timeoutMs`. */
  stuckSend(now: number, timeoutMs: number): PendingSend | undefined {
    for (const p of this.pending) if (now - p.since > timeoutMs) return p;
    return undefined;
  }
}
