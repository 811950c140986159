import type { CollectivePhase } from '@lits-ddp/protocol';
import { bytesOf, lanesFrom, type Combine, type Lanes } from './lanes.js';
import { expectBytes, type Hop, type OpTransport } from './transport.js';

export interface RingSpec<T extends Lanes> {
  /** Reduced in place; every rank ends with the same bits. */
  data: T;
  combine: Combine<T>;
  phases: readonly [reduceScatter: CollectivePhase, allGather: CollectivePhase];
  /**
   * This rank's own values, when they are not in `data` already: the slices sent at step 0 are sent straight from
   * it, and each slice received in reduce-scatter is combined as data = source (op) incoming, so no copy is made.
   */
  source?: T;
  /**
   * Fills this rank's own values into data[a, b) before the slice is first sent or added to (without `source`).
   * Called once per slice: first for the slices sent at step 0, then for the others in the order they are needed,
   * in the time spent waiting for messages, and at the latest just before the slice is first added to.
   */
  prepare?: (a: number, b: number) => void;
  /**
   * Called once per slice of the segment this rank completes (after the last reduce-scatter step), before it is
   * forwarded: it may transform the values in place (e.g. divide for a mean), and every rank receives the result.
   */
  complete?: (a: number, b: number) => void;
  /** Called once per slice with its final values (a view: do not keep or change it). */
  finish?: (a: number, b: number, values: T) => void;
  /**
   * Store all-gathered slices in `data` (default true). When false, they are forwarded as received and only
   * passed to `finish`, which saves a copy when the caller converts the result anyway.
   */
  gatherIntoData?: boolean;
}

const mod = (a: number, n: number): number => ((a % n) + n) % n;

/** Element range of ring segment `s` of `n`: floor(L*s/n) .. floor(L*(s+1)/n). */
function segment(length: number, s: number, n: number): [number, number] {
  return [Math.floor((length * s) / n), Math.floor((length * (s + 1)) / n)];
}

/**
 * The fewest slices of at most `perSlice` elements covering [start, end), of equal size give or take one element
 * (no short tail chunk that costs a whole message for a few bytes); none for an empty segment.
 */
function slices(start: number, end: number, perSlice: number): [number, number][] {
  const length = end - start;
  const count = Math.ceil(length / perSlice);
  const out: [number, number][] = [];
  for (let j = 0; j < count; j++) {
    out.push([start + Math.floor((length * j) / count), start + Math.floor((length * (j + 1)) / count)]);
  }
  return out;
}

/** Lets pending I/O callbacks run (a reply that has arrived resolves its promise). */
const yieldToIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Ring all-reduce: reduce-scatter then all-gather, N-1 steps each (global steps 0 .. 2N-3). At step t rank r sends
 * the segment it received (and reduced) at step t-1, so each slice is forwarded as soon as it has arrived:
 * every pop of the whole collective is issued up front on the receive connection and every slice moves on at once,
 * which keeps Redis busy with all ranks' slices at the same time. The all-gather copies reduced slices and never adds
 * them again, so every rank ends with identical bits; the summation order depends only on N and the layout.
 */
export async function ringAllReduce<T extends Lanes>(t: OpTransport, spec: RingSpec<T>): Promise<void> {
  const n = t.worldSize;
  const { data, combine, prepare, complete, finish, source } = spec;
  const keep = spec.gatherIntoData ?? true;
  if (n === 1) {
    if (source) data.set(source);
    prepare?.(0, data.length);
    complete?.(0, data.length);
    finish?.(0, data.length, data);
    return;
  }
  const r = t.rank;
  const right = mod(r + 1, n);
  const left = mod(r - 1, n);
  const laneBytes = data.BYTES_PER_ELEMENT;
  const perSlice = Math.max(1, Math.floor(t.chunkBytes / laneBytes));
  const steps = 2 * (n - 1);
  const hopOf = (step: number, chunk: number): Hop =>
    step < n - 1
      ? { phase: spec.phases[0], step, chunk }
      : { phase: spec.phases[1], step: step - (n - 1), chunk };
  const sendSegment = (step: number): number =>
    step < n - 1 ? mod(r - step, n) : mod(r + 1 - (step - n + 1), n);
  const recvSegment = (step: number): number =>
    step < n - 1 ? mod(r - step - 1, n) : mod(r - (step - n + 1), n);
  const slicesOf = (s: number): [number, number][] => {
    const [a, b] = segment(data.length, s, n);
    return slices(a, b, perSlice);
  };

  slicesOf(sendSegment(0)).forEach(([a, b], j) => {
    prepare?.(a, b);
    t.send(right, hopOf(0, j), bytesOf(source ?? data, a, b));
  });

  interface Pop {
    step: number;
    chunk: number;
    a: number;
    b: number;
    reply: Promise<Buffer>;
    arrived: boolean;
    prepared: boolean;
  }
  const pops: Pop[] = [];
  for (let step = 0; step < steps; step++) {
    slicesOf(recvSegment(step)).forEach(([a, b], chunk) => {
      const p: Pop = {
        step,
        chunk,
        a,
        b,
        reply: t.recv(left, hopOf(step, chunk)),
        arrived: false,
        prepared: false,
      };
      // A failure rejects many queued pops at once; only the one being awaited reports it.
      p.reply.then(
        () => {
          p.arrived = true;
        },
        () => undefined,
      );
      pops.push(p);
    });
  }
  // Slices received in reduce-scatter still to be filled with this rank's values, in the order they are needed.
  const unprepared = prepare ? pops.filter((p) => p.step < n - 1) : [];
  let nextUnprepared = 0;
  const prepareSlice = (p: Pop): void => {
    if (!prepare || p.prepared) return;
    prepare(p.a, p.b);
    p.prepared = true;
  };

  for (const p of pops) {
    // Fill slices ahead while this message is still on its way, one at a time so an arrival is seen at once;
    // preparing them all up front would hold back the first forward, and every rank after this one.
    while (!p.arrived && nextUnprepared < unprepared.length) {
      prepareSlice(unprepared[nextUnprepared++] as Pop);
      await yieldToIo();
    }
    const buf = await p.reply;
    const hop = hopOf(p.step, p.chunk);
    expectBytes(
      t,
      left,
      hop,
      buf,
      (p.b - p.a) * laneBytes,
      'do all ranks pass the same length and chunkBytes?',
    );
    const incoming = lanesFrom(data, buf, p.b - p.a);
    const next = p.step + 1 < steps ? hopOf(p.step + 1, p.chunk) : undefined;
    // Forward first: the next rank is waiting for this slice; checks and conversions can follow.
    if (p.step < n - 1) {
      prepareSlice(p);
      const dst = data.subarray(p.a, p.b) as T;
      // Each slice is received once in reduce-scatter, so with a source this is its first and only combine.
      combine(dst, source ? (source.subarray(p.a, p.b) as T) : dst, incoming);
      if (p.step === n - 2) complete?.(p.a, p.b); // this rank's own segment is now complete
      if (next) t.send(right, next, bytesOf(data, p.a, p.b));
      if (p.step === n - 2) finish?.(p.a, p.b, dst);
    } else {
      if (next) t.send(right, next, buf);
      if (keep) data.set(incoming, p.a);
      finish?.(p.a, p.b, incoming);
    }
  }
  await t.flush();
}
