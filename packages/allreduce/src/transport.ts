import type { CollectivePhase } from '@lits-ddp/protocol';
import { CollectiveProtocolError } from './errors.js';

/** Position of a message inside one collective. */
export interface Hop {
  phase: CollectivePhase;
  step: number;
  chunk: number;
}

/** What the algorithms (ring, star) need from one running collective. */
export interface OpTransport {
  readonly rank: number;
  readonly worldSize: number;
  readonly chunkBytes: number;
  readonly label: string;
  readonly sequence: number;
  /** Queues an RPUSH of `payload` to `to`'s list for this hop. The bytes must not change until flush(). */
  send(to: number, hop: Hop, payload: Uint8Array): void;
  /** Pops the message `from` sent for this hop. */
  recv(from: number, hop: Hop): Promise<Buffer>;
  /** Resolves when every queued send has been acknowledged by Redis. */
  flush(): Promise<void>;
}

export function phaseName(phase: CollectivePhase): string {
  switch (phase) {
    case 'rs':
      return 'reduce-scatter';
    case 'ag':
      return 'all-gather';
    case 'xrs':
      return 'exponent reduce-scatter';
    case 'xag':
      return 'exponent all-gather';
    case 'star':
      return 'transfer';
    case 'diag':
      return 'non-finite report exchange';
  }
}

/** Checks a received message's length, naming the sender and the place in the collective when it is wrong. */
export function expectBytes(
  t: OpTransport,
  from: number,
  hop: Hop,
  buf: Buffer,
  expected: number,
  hint: string,
): void {
  if (buf.byteLength !== expected) {
    throw new CollectiveProtocolError(
      `${t.label} #${t.sequence}: rank ${from} sent ${buf.byteLength} bytes for ${phaseName(hop.phase)} step ` +
        `${hop.step} chunk ${hop.chunk}, but rank ${t.rank} expected ${expected} (${hint})`,
      from,
    );
  }
}
