import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { admissionKeys, coordinatorKeys, experimentKeys, experimentQueueKeys } from '@lits-ddp/protocol';
import { bullPrefix, QUEUE_NAME } from '../src/index.js';

describe("the service's Redis keys, built in protocol", () => {
  it('are the strings this service has always used, under the deployment prefix', () => {
    const before = process.env.LITS_KEY_PREFIX;
    try {
      for (const prefix of [undefined, 'site-b']) {
        if (prefix === undefined) delete process.env.LITS_KEY_PREFIX;
        else process.env.LITS_KEY_PREFIX = prefix;
        const p = prefix ?? 'lits';
        const digest = createHash('sha256').update('retry-1').digest('hex');
        expect([
          experimentKeys.record('exp-1'),
          experimentKeys.metrics('exp-1'),
          experimentKeys.owner('exp-1'),
          experimentKeys.index(),
          experimentKeys.idempotency(digest),
          coordinatorKeys.alive('queue-worker-1'),
          admissionKeys.queue(),
          admissionKeys.meta(),
          admissionKeys.reserved(),
          admissionKeys.lock(),
          bullPrefix(),
          `${bullPrefix()}:${QUEUE_NAME}`,
        ]).toEqual([
          `${p}:coord:exp:exp-1`,
          `${p}:coord:exp:exp-1:metrics`,
          `${p}:coord:exp:exp-1:owner`,
          `${p}:coord:experiments`,
          `${p}:coord:idem:${digest}`,
          `${p}:coord:alive:queue-worker-1`,
          `${p}:coord:admission:queue`,
          `${p}:coord:admission:meta`,
          `${p}:coord:admission:reserved`,
          `${p}:coord:admission:lock`,
          `${p}:bull`,
          `${p}:bull:experiments`,
        ]);
        expect(experimentQueueKeys.prefix()).toBe(bullPrefix());
      }
    } finally {
      if (before === undefined) delete process.env.LITS_KEY_PREFIX;
      else process.env.LITS_KEY_PREFIX = before;
    }
  });
});
