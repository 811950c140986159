import type { Redis } from 'ioredis';
import { runEventOfFields, runEventXadd, runKeys, type RunEvent } from '@lits-ddp/protocol';

export interface StreamedEvent {
  /** The Redis stream id: SSE uses it as the event id, so clients resume after Last-Event-ID. */
  id: string;
  event: RunEvent;
}

export async function publishEvent(redis: Redis, runId: string, event: RunEvent): Promise<string> {
  return (await redis.xadd(...runEventXadd(runId, event))) ?? '';
}

/** Reads a run's events after `afterId` ('0' = from the start), waiting up to `blockMs` for new ones. */
export async function readEvents(
  redis: Redis,
  runId: string,
  afterId: string,
  blockMs: number,
): Promise<StreamedEvent[]> {
  const res = (await redis.xread(
    'COUNT',
    500,
    'BLOCK',
    blockMs,
    'STREAMS',
    runKeys.events(runId),
    afterId,
  )) as Array<[string, Array<[string, string[]]>]> | null;
  const out: StreamedEvent[] = [];
  for (const [, entries] of res ?? []) {
    for (const [id, fields] of entries) {
      const event = runEventOfFields(fields);
      if (event) out.push({ id, event });
    }
  }
  return out;
}

export interface EventPage {
  events: StreamedEvent[];
  /** Id of the last entry read (undecodable ones included), to continue after it. */
  lastId: string | undefined;
  /** The page held `count` entries, so more may follow. */
  full: boolean;
}

/** Reads up to `count` events from `start` ('-' = the beginning, '(id' = after id) without blocking. */
export async function readEventRange(
  redis: Redis,
  runId: string,
  start: string,
  count: number,
): Promise<EventPage> {
  const entries = (await redis.xrange(runKeys.events(runId), start, '+', 'COUNT', count)) as Array<
    [string, string[]]
  >;
  const events: StreamedEvent[] = [];
  for (const [id, fields] of entries) {
    const event = runEventOfFields(fields);
    if (event) events.push({ id, event });
  }
  return { events, lastId: entries.at(-1)?.[0], full: entries.length === count };
}
