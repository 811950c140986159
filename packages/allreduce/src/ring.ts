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
 * Who this rank talks to and what moves at each global step t of 0 .. 2N-3: reduce-scatter for t < N-1, then
 * all-gather. At step t rank r sends the segment it received (and reduced) at step t-1.
 */
class RingLayout {
  private readonly n: number;
  readonly right: number;
  readonly left: number;
  readonly steps: number;
  private readonly rank: number;
  private readonly perSlice: number;

  constructor(
    t: OpTransport,
    private readonly length: number,
    laneBytes: number,
    private readonly phases: RingSpec<Lanes>['phases'],
  ) {
    this.n = t.worldSize;
    this.right = mod(t.rank + 1, this.n);
    this.left = mod(t.rank - 1, this.n);
    this.steps = 2 * (this.n - 1);
    this.rank = t.rank;
    this.perSlice = Math.max(1, Math.floor(t.chunkBytes / laneBytes));
  }

  /** Steps before this one reduce; from here on they gather. */
  get firstGatherStep(): number {
    return this.n - 1;
  }

  hop(step: number, chunk: number): Hop {
    return step < this.n - 1
      ? { phase: this.phases[0], step, chunk }
      : { phase: this.phases[1], step: step - (this.n - 1), chunk };
  }

  sendSegment(step: number): number {
    const { n, rank: r } = this;
    return step < n - 1 ? mod(r - step, n) : mod(r + 1 - (step - n + 1), n);
  }

  recvSegment(step: number): number {
    const { n, rank: r } = this;
    return step < n - 1 ? mod(r - step - 1, n) : mod(r - (step - n + 1), n);
  }

  slicesOf(s: number): [number, number][] {
    const [a, b] = segment(this.length, s, this.n);
    return slices(a, b, this.perSlice);
  }
}

/** One slice this rank receives: its place in the collective, its element range and its pending pop. */
interface Pop {
  step: number;
  chunk: number;
  a: number;
  b: number;
  reply: Promise<Buffer>;
  arrived: boolean;
  prepared: boolean;
}

/**
 * Issues every pop of the whole collective up front on the receive connection, in the order the slices arrive, so
 * Redis serves all ranks' slices at the same time.
 */
function issuePops(t: OpTransport, ring: RingLayout): Pop[] {
  const pops: Pop[] = [];
  for (let step = 0; step < ring.steps; step++) {
    ring.slicesOf(ring.recvSegment(step)).forEach(([a, b], chunk) => {
      const p: Pop = {
        step,
        chunk,
        a,
        b,
        reply: t.recv(ring.left, ring.hop(step, chunk)),
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
  return pops;
}

/**
 * Fills this rank's own values into the slices received in reduce-scatter (`RingSpec.prepare`), ahead of need while
 * messages are on their way, and at the latest just before a slice is first added to.
 */
class SlicePreparer {
  private next = 0;

  constructor(
    private readonly prepare: ((a: number, b: number) => void) | undefined,
    /** Slices received in reduce-scatter, in the order they are needed. */
    private readonly unprepared: readonly Pop[],
  ) {}

  /** Fills `p` unless done already. */
  fill(p: Pop): void {
    if (!this.prepare || p.prepared) return;
    this.prepare(p.a, p.b);
    p.prepared = true;
  }

  /**
   * Fills slices ahead while `awaited` is still on its way, one at a time so an arrival is seen at once; preparing
   * them all up front would hold back the first forward, and every rank after this one.
   */
  async fillWhileWaiting(awaited: Pop): Promise<void> {
    while (!awaited.arrived && this.next < this.unprepared.length) {
      this.fill(this.unprepared[this.next++] as Pop);
      await yieldToIo();
    }
  }
}

/** Every step on one rank: the whole buffer is this rank's own segment. */
function singleRank<T extends Lanes>(spec: RingSpec<T>): void {
  const { data, source } = spec;
  if (source) data.set(source);
  spec.prepare?.(0, data.length);
  spec.complete?.(0, data.length);
  spec.finish?.(0, data.length, data);
}

/** Step 0: this rank's own slices of its first segment go straight out. */
function sendOwnSegment<T extends Lanes>(t: OpTransport, ring: RingLayout, spec: RingSpec<T>): void {
  ring.slicesOf(ring.sendSegment(0)).forEach(([a, b], j) => {
    spec.prepare?.(a, b);
    t.send(ring.right, ring.hop(0, j), bytesOf(spec.source ?? spec.data, a, b));
  });
}

/** Awaits `p` and checks its length, naming the sender and the place in the collective when it is wrong. */
async function receive<T extends Lanes>(t: OpTransport, ring: RingLayout, data: T, p: Pop): Promise<Buffer> {
  const buf = await p.reply;
  const laneBytes = data.BYTES_PER_ELEMENT;
  const hint = 'do all ranks pass the same length and chunkBytes?';
  expectBytes(t, ring.left, ring.hop(p.step, p.chunk), buf, (p.b - p.a) * laneBytes, hint);
  return buf;
}

/**
 * Reduce-scatter: combines this rank's values with the incoming slice (`RingSpec.combine`) and forwards the result.
 * At the last reduce step the slice belongs to this rank's own segment, now complete.
 */
function reduceSlice<T extends Lanes>(
  t: OpTransport,
  ring: RingLayout,
  spec: RingSpec<T>,
  ahead: SlicePreparer,
  p: Pop,
  incoming: T,
): void {
  const { data, source } = spec;
  const lastReduce = p.step === ring.firstGatherStep - 1;
  ahead.fill(p);
  const dst = data.subarray(p.a, p.b) as T;
  // Each slice is received once in reduce-scatter, so with a source this is its first and only combine.
  spec.combine(dst, source ? (source.subarray(p.a, p.b) as T) : dst, incoming);
  if (lastReduce) spec.complete?.(p.a, p.b);
  // Forward first: the next rank is waiting for this slice; conversions in `finish` can follow.
  t.send(ring.right, ring.hop(p.step + 1, p.chunk), bytesOf(data, p.a, p.b));
  if (lastReduce) spec.finish?.(p.a, p.b, dst);
}

/** All-gather: forwards the reduced slice as received (never added again), then keeps it. */
function gatherSlice<T extends Lanes>(
  t: OpTransport,
  ring: RingLayout,
  spec: RingSpec<T>,
  p: Pop,
  buf: Buffer,
  incoming: T,
): void {
  if (p.step + 1 < ring.steps) t.send(ring.right, ring.hop(p.step + 1, p.chunk), buf);
  if (spec.gatherIntoData ?? true) spec.data.set(incoming, p.a);
  spec.finish?.(p.a, p.b, incoming);
}

/**
 * Ring all-reduce: reduce-scatter then all-gather, N-1 steps each (global steps 0 .. 2N-3). At step t rank r sends
 * the segment it received (and reduced) at step t-1, so each slice is forwarded as soon as it has arrived:
 * every pop of the whole collective is issued up front on the receive connection and every slice moves on at once,
 * which keeps Redis busy with all ranks' slices at the same time. The all-gather copies reduced slices and never adds
 * them again, so every rank ends with identical bits; the summation order depends only on N and the layout.
 */
export async function ringAllReduce<T extends Lanes>(t: OpTransport, spec: RingSpec<T>): Promise<void> {
  if (t.worldSize === 1) {
    singleRank(spec);
    return;
  }
  const { data } = spec;
  const ring = new RingLayout(t, data.length, data.BYTES_PER_ELEMENT, spec.phases);
  sendOwnSegment(t, ring, spec);
  const pops = issuePops(t, ring);
  const reduced = spec.prepare ? pops.filter((p) => p.step < ring.firstGatherStep) : [];
  const ahead = new SlicePreparer(spec.prepare, reduced);
  for (const p of pops) {
    await ahead.fillWhileWaiting(p);
    const buf = await receive(t, ring, data, p);
    const incoming = lanesFrom(data, buf, p.b - p.a);
    if (p.step < ring.firstGatherStep) reduceSlice(t, ring, spec, ahead, p, incoming);
    else gatherSlice(t, ring, spec, p, buf, incoming);
  }
  await t.flush();
}
