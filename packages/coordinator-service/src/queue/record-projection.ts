import type { Logger } from 'pino';
import type { RunEvent } from '@lits-ddp/protocol';
import {
  MAX_GENERATIONS,
  TERMINAL_STATUSES,
  type ExperimentRecord,
  type ExperimentStore,
  type RecordPatch,
} from './experiment-store.js';

type StateEvent = Extract<RunEvent, { type: 'status' | 'waiting' | 'generation' }>;

/** The events that change an experiment record (the rest are the stream's alone). */
export const isStateEvent = (event: RunEvent): event is StateEvent =>
  event.type === 'status' || event.type === 'waiting' || event.type === 'generation';

/**
 * How one of the supervisor's events moves an experiment record along the run's state machine:
 * `preparing` → `running` (the ranks' workers) → `restarting` (restarts + 1, the lost workers gone from
 * the list) → waiting for workers (how many are missing) → `running` … → finished, failed or cancelled.
 * Each `generation` event (just before its `running`) adds to the record's generations and sets the
 * ranks' workers. Undefined for a record already over (its last state stays) and for events that
 * change nothing here, the run's own finished/failed/cancelled among them: the supervisor writes the
 * outcome once, with everything it holds (the error, test metrics, model, end time), so a client that
 * reads a terminal status never reads it without them.
 */
export function recordChange(
  event: RunEvent,
  rec: Pick<ExperimentRecord, 'status' | 'workers' | 'waitingForWorkers' | 'generations'>,
  at: number,
): RecordPatch | undefined {
  if (TERMINAL_STATUSES.has(rec.status) || !isStateEvent(event)) return undefined;
  if (event.type === 'generation') {
    const known = rec.generations ?? [];
    // Read again from the stream (a coordinator that took the run over): the record is past it.
    if ((known.at(-1)?.generation ?? 0) >= event.generation) return undefined;
    const { generation, worldSize, workers, change, reason, resumeEpoch } = event;
    const entry = { generation, worldSize, workers, change, reason, resumeEpoch, at };
    return { set: { generations: [...known, entry].slice(-MAX_GENERATIONS), workers } };
  }
  if (event.type === 'waiting') {
    const { needed, free, missing, message } = event;
    // One wait may report several times (what it waits for changed): it began at the first report.
    const since = rec.waitingForWorkers?.since ?? at;
    return { set: { waitingForWorkers: { needed, free, missing, message, since } } };
  }
  if (TERMINAL_STATUSES.has(event.status)) return undefined;
  const set: RecordPatch['set'] = { status: event.status, restarts: event.restarts };
  if (event.status === 'running' && event.workers) set.workers = event.workers;
  if (event.status === 'restarting' && event.lost && rec.workers) {
    const lost = new Set(event.lost);
    set.workers = rec.workers.filter((w) => !lost.has(w));
  }
  const waitOver = event.status !== 'restarting' && event.status !== 'preparing';
  return { set, ...(waitOver && rec.waitingForWorkers ? { unset: ['waitingForWorkers'] } : {}) };
}

/** A stream id (`<ms>-<seq>`) as numbers, to order events. */
const streamPosition = (id: string): [number, number] => {
  const [ms = '0', seq = '0'] = id.split('-');
  return [Number(ms), Number(seq)];
};

const isAfter = (a: [number, number], b: [number, number]): boolean =>
  a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

/**
 * Applies a run's state events to its experiment record one at a time, in stream order, so the REST
 * view says what the event stream says (and not, say, `running` while the run waits for a
 * replacement worker). The supervisor hands over its own events as it publishes them, before it
 * reads the older ones of the stream (`queued`, `preparing`): those change nothing any more.
 */
export class RecordProjection {
  private chain: Promise<void> = Promise.resolve();
  private newest: [number, number] = [0, 0];

  constructor(
    private readonly store: ExperimentStore,
    private readonly id: string,
    private readonly log: Logger,
  ) {}

  /** `streamId`: the event's id in the run's stream (its time is the event's), also for replayed events. */
  apply(event: RunEvent, streamId: string): void {
    if (!isStateEvent(event)) return;
    const at = streamPosition(streamId);
    if (!isAfter(at, this.newest)) return;
    this.newest = at;
    this.chain = this.chain
      .then(async () => {
        const rec = await this.store.get(this.id);
        const change = rec && recordChange(event, rec, at[0]);
        if (change) await this.store.patch(this.id, change);
      })
      .catch((err: unknown) => this.log.warn({ err }, 'could not record an event'));
  }

  /** Resolves once every event applied so far is written. */
  async flush(): Promise<void> {
    await this.chain;
  }
}
