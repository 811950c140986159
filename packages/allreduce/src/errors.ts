import { LitsError } from '@lits-ddp/errors';
import type { AbortOrigin, CollectivePhase } from '@lits-ddp/protocol';

/** Where a rank was waiting when a collective failed. */
export interface WaitPoint {
  operation: string;
  sequence: number;
  phase: CollectivePhase;
  step: number;
  chunk: number;
  /** The rank whose message this rank was waiting for. */
  from: number;
}

/**
 * A wait ran past the timeout. `suspects` are the ranks found responsible: ranks with no Redis connection left
 * (dead), ranks in a different collective at this sequence (call order differs), ranks behind, or else the rank
 * whose message is missing.
 */
export class CollectiveTimeoutError extends LitsError {
  readonly operation: string;
  readonly sequence: number;
  readonly phase: CollectivePhase;
  readonly step: number;
  readonly chunk: number;
  readonly waitingFor: number;

  constructor(
    message: string,
    wait: WaitPoint,
    readonly rank: number,
    readonly timeoutMs: number,
    readonly suspects: readonly number[],
  ) {
    super('COLLECTIVE_TIMEOUT', message);
    this.operation = wait.operation;
    this.sequence = wait.sequence;
    this.phase = wait.phase;
    this.step = wait.step;
    this.chunk = wait.chunk;
    this.waitingFor = wait.from;
  }
}

/** The group was aborted (by a rank, a timeout on another rank, or the coordinator). */
export class CollectiveAbortedError extends LitsError {
  constructor(
    message: string,
    readonly abortedBy: AbortOrigin,
    readonly reason: string,
    /** Ranks the aborting side blamed (from its timeout diagnosis); empty when it did not say. */
    readonly suspects: readonly number[] = [],
  ) {
    super('COLLECTIVE_ABORTED', message);
  }
}

/** A peer sent a message that does not fit this rank's view of the collective (length, framing). */
export class CollectiveProtocolError extends LitsError {
  constructor(
    message: string,
    readonly from: number,
    options?: { cause?: unknown },
  ) {
    super('COLLECTIVE_PROTOCOL', message, options);
  }
}

/** One rank's first non-finite input value. */
export interface NonFiniteReport {
  rank: number;
  /** Index into the contributions list (exact mode); 0 in ring mode. */
  contribution: number;
  index: number;
  value: 'NaN' | 'Infinity' | '-Infinity';
}

/**
 * An all-reduce met NaN or Infinity in an input, or its sum overflowed float32. Every rank throws the same error
 * (the reports are all-gathered), and the communicator stays usable.
 */
export class NonFiniteError extends LitsError {
  constructor(
    message: string,
    readonly reports: readonly NonFiniteReport[],
    /** First non-finite index of the result, when the inputs were finite and the sum overflowed. */
    readonly overflowIndex: number | undefined,
  ) {
    super('NON_FINITE', message);
  }
}

/** Ranks disagree about a collective's arguments (e.g. totalContributions). Thrown on every rank alike. */
export class CollectiveArgumentError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('COLLECTIVE_ARGUMENT', message, options);
  }
}

/** Redis refused or lost a push (e.g. out of memory); the group cannot finish the collective. */
export class CollectiveRedisError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('COLLECTIVE_REDIS', message, options);
  }
}

/**
 * A `CommunicatorOptions` or `RunTarget` field is out of range. `field` is its full name
 * (`CommunicatorOptions.chunkBytes`, `RunTarget.ttlS`); the message also gives the value.
 */
export class CollectiveOptionsError extends LitsError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('COLLECTIVE_OPTIONS_INVALID', message);
  }
}

/** A Redis instance cannot serve the group: unreachable within the timeout, or a Redis Cluster node. */
export class RedisUnavailableError extends LitsError {
  constructor(
    /** The instance, without credentials. */
    readonly redis: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('REDIS_UNAVAILABLE', message, options);
  }
}

/** One Redis command failed or got no answer in time (our connections retry forever, so a dead Redis hangs). */
export class RedisCommandError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('REDIS_COMMAND_FAILED', message, options);
  }
}

/** The communicator was closed, or has failed and closed its data connections; open a new one. */
export class CommunicatorClosedError extends LitsError {
  constructor(message: string) {
    super('COMMUNICATOR_CLOSED', message);
  }
}

/** The collectives send float32 lanes as raw little-endian bytes; a big-endian CPU cannot join. */
export class UnsupportedPlatformError extends LitsError {
  constructor(message: string) {
    super('PLATFORM_UNSUPPORTED', message);
  }
}
