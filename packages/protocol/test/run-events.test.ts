import { describe, expect, it } from 'vitest';
import {
  decodeRunEvent,
  RUN_EVENT_FIELD,
  RUN_EVENTS_MAXLEN,
  runEventOfFields,
  runEventXadd,
  runKeys,
  type RunEvent,
} from '../src/index.js';

describe('run event stream entries', () => {
  const event: RunEvent = { type: 'status', status: 'running', restarts: 1 };

  it('decodes the JSON of a known event type from a stream entry', () => {
    const fields = [RUN_EVENT_FIELD, JSON.stringify(event)];
    expect(runEventOfFields(fields)).toEqual(event);
    expect(runEventOfFields(['other', 'x', ...fields])).toEqual(event);
  });

  it('appends with a capped XADD whose entry decodes back to the event', () => {
    const [key, ...rest] = runEventXadd('exp-1', event);
    expect(key).toBe(runKeys.events('exp-1'));
    expect(rest.slice(0, 4)).toEqual(['MAXLEN', '~', RUN_EVENTS_MAXLEN, '*']);
    expect(runEventOfFields(rest.slice(4) as string[])).toEqual(event);
  });

  it('rejects entries from other writers: bad JSON, unknown types, a missing field', () => {
    expect(decodeRunEvent('{not json')).toBeUndefined();
    expect(decodeRunEvent(JSON.stringify({ type: 'reboot' }))).toBeUndefined();
    expect(decodeRunEvent(JSON.stringify([1, 2]))).toBeUndefined();
    expect(decodeRunEvent(undefined)).toBeUndefined();
    expect(runEventOfFields(['x', JSON.stringify(event)])).toBeUndefined();
  });
});
