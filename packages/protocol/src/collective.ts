// Keys and messages of the collectives (packages/allreduce). Every Redis key a collective touches is built here.
import { keyPrefix } from './namespace.js';

/**
 * The collective a message belongs to, with its reduce operation; part of every message key, so ranks that call
 * different collectives (or reduce with different operations) at one sequence number never consume each other's
 * messages: they time out and the diagnosis names the mismatch.
 */
export type CollectiveOp =
  | 'allreduce-sum'
  | 'allreduce-mean'
  | 'allreduce-max'
  | 'exact-sum'
  | 'exact-mean'
  | 'broadcast'
  | 'allgather'
  | 'barrier';

/**
 * Sub-phase inside one collective: ring reduce-scatter / all-gather (`rs`, `ag`; exact mode's integer lanes use
 * them too), the exact mode's one-hop all-gather of block exponents (`xag`), framed point-to-point messages of
 * broadcast / all-gather / barrier (`star`), and the all-gather of local reports that explains a non-finite result
 * (`diag`). Nothing sends `xrs` any more (exact mode once reduced the exponents in a ring); the member is only kept.
 */
export type CollectivePhase = 'rs' | 'ag' | 'xrs' | 'xag' | 'star' | 'diag';

/** Where a message sits: the k-th collective call (`sequence`) is the same collective on every rank. */
export interface MessageAddress {
  sequence: number;
  op: CollectiveOp;
  phase: CollectivePhase;
  step: number;
  chunk: number;
  from: number;
  to: number;
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Run ids end up in key names, glob patterns and CLIENT SETNAME, so only a safe alphabet is allowed. */
export function validateRunId(runId: unknown, field = 'runId'): string {
  if (typeof runId !== 'string' || !RUN_ID.test(runId)) {
    throw new Error(
      `${field} must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit (got ${JSON.stringify(runId)})`,
    );
  }
  return runId;
}

function checkNonNegativeInt(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${field} must be a non-negative integer (got ${value})`);
  }
}

/**
 * Key builders of one run generation; they sit under the run's own keys (run-keys.ts). With
 * base = {prefix}:run:{runId}:coll:g{generation} (prefix `lits`):
 *
 *   {base}:abort                                              string, abort record (JSON)
 *   {base}:progress                                           hash, rank -> progress record (JSON)
 *   {base}:m:{seq}:{op}:{phase}:{step}:{chunk}:{from}>{to}    list, one binary chunk
 *   {base}:x:{name}:{part}                                    list, scratch (benchmarks)
 */
export class CollectiveKeys {
  readonly base: string;

  constructor(
    readonly runId: string,
    readonly generation: number,
    readonly prefix: string = keyPrefix(),
  ) {
    validateRunId(runId);
    checkNonNegativeInt(generation, 'generation');
    this.base = `${prefix}:run:${runId}:coll:g${generation}`;
  }

  /** The per-run-generation abort record; set once (NX) by the first rank or coordinator that aborts. */
  get abort(): string {
    return `${this.base}:abort`;
  }

  /** Hash of each rank's latest collective (field = rank), read when diagnosing a timeout. */
  get progress(): string {
    return `${this.base}:progress`;
  }

  message(a: MessageAddress): string {
    return `${this.base}:m:${a.sequence}:${a.op}:${a.phase}:${a.step}:${a.chunk}:${a.from}>${a.to}`;
  }

  /** A scratch list inside this generation's namespace, removed by the same cleanup. */
  scratch(name: string, part: number | string): string {
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`scratch key name must match [a-z0-9-]+ (got ${name})`);
    return `${this.base}:x:${name}:${part}`;
  }

  /** SCAN pattern matching every key of this run generation. */
  get pattern(): string {
    return `${this.base}:*`;
  }

  /** SCAN pattern matching every collective key of a run, all generations. */
  static runPattern(runId: string, prefix: string = keyPrefix()): string {
    return `${prefix}:run:${validateRunId(runId)}:coll:*`;
  }
}

/** Role of one Redis connection of a rank; part of its CLIENT SETNAME. */
export type ConnectionRole = 'control' | 'send' | `recv${number}`;

/**
 * Every connection of a communicator carries this name, so `CLIENT LIST` shows which ranks still hold a connection:
 * a killed process loses its sockets at once, which is how a timeout names a dead rank.
 */
export function collectiveClientName(
  runId: string,
  generation: number,
  rank: number,
  role: ConnectionRole,
): string {
  return `${clientNamePrefix(runId, generation)}r${rank}:${role}`;
}

export function clientNamePrefix(runId: string, generation: number): string {
  return `lits-ddp:${validateRunId(runId)}:g${generation}:`;
}

/** Reads the rank out of a client name of this run generation, or undefined for anyone else's connection. */
export function rankOfClientName(name: string, runId: string, generation: number): number | undefined {
  const prefix = clientNamePrefix(runId, generation);
  if (!name.startsWith(prefix)) return undefined;
  const match = /^r(\d+):/.exec(name.slice(prefix.length));
  return match ? Number(match[1]) : undefined;
}

/** Who aborted: a rank number, or a named outside party such as `coordinator`. */
export type AbortOrigin = number | string;

/** Value of the abort key (JSON). */
export interface AbortRecord {
  by: AbortOrigin;
  reason: string;
  /** Milliseconds since the epoch. */
  at: number;
  generation: number;
  /** Ranks blamed for the failure that caused the abort (a timeout's diagnosis), if any. */
  suspects?: number[];
}

export function encodeAbortRecord(record: AbortRecord): string {
  return JSON.stringify(record);
}

function objectOf(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${what} is not JSON: ${text.slice(0, 80)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${what} must be a JSON object: ${text.slice(0, 80)}`);
  }
  return value as Record<string, unknown>;
}

/** Validates an abort record read from Redis; `key` names the key in the error. */
export function parseAbortRecord(text: string, key: string): AbortRecord {
  const o = objectOf(text, `abort record at ${key}`);
  const { by, reason, at, generation, suspects } = o;
  const validBy = (typeof by === 'number' && Number.isSafeInteger(by)) || typeof by === 'string';
  if (!validBy) throw new Error(`abort record at ${key}: field "by" must be a rank or a name`);
  if (typeof reason !== 'string') throw new Error(`abort record at ${key}: field "reason" must be a string`);
  if (typeof at !== 'number') throw new Error(`abort record at ${key}: field "at" must be a number`);
  if (typeof generation !== 'number') {
    throw new Error(`abort record at ${key}: field "generation" must be a number`);
  }
  if (
    suspects !== undefined &&
    !(Array.isArray(suspects) && suspects.every((r) => Number.isSafeInteger(r)))
  ) {
    throw new Error(`abort record at ${key}: field "suspects" must be a list of ranks`);
  }
  return {
    by: by as AbortOrigin,
    reason,
    at,
    generation,
    ...(suspects ? { suspects: suspects as number[] } : {}),
  };
}

/** Value of one field of the progress hash (JSON): the collective a rank entered or finished last. */
export interface ProgressRecord {
  sequence: number;
  /** Human label, e.g. `allReduce(sum)`; differing labels at one sequence mean the call order differs. */
  label: string;
  state: 'entered' | 'done';
  at: number;
}

export function encodeProgressRecord(record: ProgressRecord): string {
  return JSON.stringify(record);
}

export function parseProgressRecord(text: string, where: string): ProgressRecord {
  const o = objectOf(text, `progress record ${where}`);
  const { sequence, label, state, at } = o;
  if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence)) {
    throw new Error(`progress record ${where}: field "sequence" must be an integer`);
  }
  if (typeof label !== 'string') throw new Error(`progress record ${where}: field "label" must be a string`);
  if (state !== 'entered' && state !== 'done') {
    throw new Error(`progress record ${where}: field "state" must be "entered" or "done"`);
  }
  if (typeof at !== 'number') throw new Error(`progress record ${where}: field "at" must be a number`);
  return { sequence, label, state, at };
}

/**
 * Framed point-to-point payloads (broadcast, all-gather, barrier) start with a 16-byte little-endian header in their
 * first chunk: magic, total payload bytes, the sender's chunk size, and a reserved zero word. The first chunk then
 * carries up to chunkBytes - 16 payload bytes; every further chunk up to chunkBytes.
 * Ring chunks of allReduce have no header: they are raw little-endian lanes whose byte length both sides derive
 * from the vector length, world size and chunk size, and the receiver checks it.
 */
export const FRAME_MAGIC = 0x3153444c; // "LDS1" read as little-endian bytes
export const FRAME_HEADER_BYTES = 16;

export interface FrameHeader {
  totalBytes: number;
  chunkBytes: number;
}

export function encodeFrameHeader(h: FrameHeader): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES);
  b.writeUInt32LE(FRAME_MAGIC, 0);
  b.writeUInt32LE(h.totalBytes, 4);
  b.writeUInt32LE(h.chunkBytes, 8);
  return b;
}

/** Validates the header of a framed message; `where` names the key/sender in errors. */
export function parseFrameHeader(first: Uint8Array, where: string): FrameHeader {
  if (first.byteLength < FRAME_HEADER_BYTES) {
    throw new Error(
      `${where}: first chunk is ${first.byteLength} bytes, shorter than the 16-byte frame header`,
    );
  }
  const view = Buffer.from(first.buffer, first.byteOffset, FRAME_HEADER_BYTES);
  const magic = view.readUInt32LE(0);
  if (magic !== FRAME_MAGIC) {
    throw new Error(
      `${where}: bad frame magic 0x${magic.toString(16)} (expected 0x${FRAME_MAGIC.toString(16)})`,
    );
  }
  const totalBytes = view.readUInt32LE(4);
  const chunkBytes = view.readUInt32LE(8);
  if (chunkBytes <= FRAME_HEADER_BYTES)
    throw new Error(`${where}: frame chunk size ${chunkBytes} is too small`);
  return { totalBytes, chunkBytes };
}

/** Number of list messages a framed payload of `totalBytes` takes with the sender's `chunkBytes`. */
export function frameChunkCount(h: FrameHeader): number {
  const firstCapacity = h.chunkBytes - FRAME_HEADER_BYTES;
  if (h.totalBytes <= firstCapacity) return 1;
  return 1 + Math.ceil((h.totalBytes - firstCapacity) / h.chunkBytes);
}
