import {
  encodeFrameHeader,
  FRAME_HEADER_BYTES,
  frameChunkCount,
  parseFrameHeader,
  type CollectivePhase,
} from '@lits-ddp/protocol';
import { errorMessage } from '@lits-ddp/errors';
import { CollectiveProtocolError } from './errors.js';
import { expectBytes, type Hop, type OpTransport } from './transport.js';

const EMPTY = new Uint8Array(0);

const MAX_FRAME_BYTES = 0xffffffff;

/** Sends a whole payload to one rank as framed chunks (header in the first chunk). */
export function sendFramed(t: OpTransport, to: number, phase: CollectivePhase, payload: Uint8Array): void {
  if (payload.byteLength > MAX_FRAME_BYTES) {
    throw new RangeError(`${t.label}: payload of ${payload.byteLength} bytes exceeds the 4 GiB frame limit`);
  }
  const firstCapacity = t.chunkBytes - FRAME_HEADER_BYTES;
  const header = encodeFrameHeader({ totalBytes: payload.byteLength, chunkBytes: t.chunkBytes });
  const head = payload.subarray(0, firstCapacity);
  t.send(to, { phase, step: 0, chunk: 0 }, Buffer.concat([header, head]));
  let chunk = 1;
  for (let a = firstCapacity; a < payload.byteLength; a += t.chunkBytes, chunk++) {
    t.send(
      to,
      { phase, step: 0, chunk },
      payload.subarray(a, Math.min(payload.byteLength, a + t.chunkBytes)),
    );
  }
}

/** Receives one framed payload from `from`; the sender's header fixes the chunk count and sizes. */
export async function recvFramed(t: OpTransport, from: number, phase: CollectivePhase): Promise<Buffer> {
  const first = await t.recv(from, { phase, step: 0, chunk: 0 });
  let header;
  try {
    header = parseFrameHeader(first, `${t.label} #${t.sequence} from rank ${from}`);
  } catch (err) {
    throw new CollectiveProtocolError(errorMessage(err), from, { cause: err });
  }
  const count = frameChunkCount(header);
  const firstPayload = Math.min(header.totalBytes, header.chunkBytes - FRAME_HEADER_BYTES);
  expectBytes(
    t,
    from,
    { phase, step: 0, chunk: 0 },
    first,
    FRAME_HEADER_BYTES + firstPayload,
    'frame header',
  );
  const out = Buffer.allocUnsafe(header.totalBytes);
  first.copy(out, 0, FRAME_HEADER_BYTES);
  const rest: Promise<Buffer>[] = [];
  for (let chunk = 1; chunk < count; chunk++) rest.push(t.recv(from, { phase, step: 0, chunk }));
  // A failure rejects every queued pop at once; the one awaited below reports it, the rest must not go unhandled.
  for (const p of rest) p.catch(() => undefined);
  let offset = firstPayload;
  for (let i = 0; i < rest.length; i++) {
    const buf = await (rest[i] as Promise<Buffer>);
    const expected = Math.min(header.chunkBytes, header.totalBytes - offset);
    expectBytes(t, from, { phase, step: 0, chunk: i + 1 }, buf, expected, 'frame chunk');
    buf.copy(out, offset);
    offset += expected;
  }
  return out;
}

/** Every rank sends its payload to every other rank; result[i] is rank i's payload. */
export async function starAllGather(
  t: OpTransport,
  phase: CollectivePhase,
  payload: Uint8Array,
): Promise<Buffer[]> {
  const n = t.worldSize;
  const result: Buffer[] = new Array<Buffer>(n);
  result[t.rank] = Buffer.from(payload);
  for (let k = 1; k < n; k++) sendFramed(t, (t.rank + k) % n, phase, payload);
  const incoming: [number, Promise<Buffer>][] = [];
  for (let k = 1; k < n; k++) {
    const from = (t.rank + k) % n;
    incoming.push([from, recvFramed(t, from, phase)]);
  }
  // As in recvFramed: the payload awaited first reports a failure; the others are only marked handled.
  for (const [, p] of incoming) p.catch(() => undefined);
  for (const [from, p] of incoming) result[from] = await p;
  await t.flush();
  return result;
}

const ACK: Hop = { phase: 'star', step: 1, chunk: 0 };

/**
 * The root sends its payload to every other rank, and returns once each has acknowledged it: so ranks that disagree
 * about the root wait (and time out, naming the mismatch) instead of each returning its own data.
 */
export async function starBroadcast(
  t: OpTransport,
  root: number,
  payload: Uint8Array | undefined,
): Promise<Buffer> {
  if (t.rank === root) {
    if (!payload) throw new TypeError(`${t.label}: the root rank ${root} must pass the data to broadcast`);
    const others = Array.from({ length: t.worldSize - 1 }, (_, k) => (root + 1 + k) % t.worldSize);
    for (const to of others) sendFramed(t, to, 'star', payload);
    const acks = others.map((from) => t.recv(from, ACK));
    // As in recvFramed: the acknowledgement awaited first reports a failure; the others are only marked handled.
    for (const a of acks) a.catch(() => undefined);
    for (const [i, a] of acks.entries())
      expectBytes(t, others[i] as number, ACK, await a, 0, 'acknowledgement');
    await t.flush();
    return Buffer.from(payload);
  }
  const data = await recvFramed(t, root, 'star');
  t.send(root, ACK, EMPTY);
  await t.flush();
  return data;
}
