import { keyPrefix } from './namespace.js';

/**
 * Redis keys of the coordinator service (packages/coordinator-service): its experiment records, the
 * capacity gate and the BullMQ queue. Worker and run keys are in run-keys.ts, collective keys in
 * collective.ts. `{p}` is keyPrefix():
 *
 * | key                                  | type                     | what                                        |
 * | ------------------------------------ | ------------------------ | ------------------------------------------- |
 * | `{p}:coord:exp:{id}`                 | hash                     | the experiment record (JSON where nested)   |
 * | `{p}:coord:exp:{id}:metrics`         | hash                     | `metric@step` → value, first value wins     |
 * | `{p}:coord:exp:{id}:owner`           | string                   | the processor supervising it (TTL, renewed) |
 * | `{p}:coord:alive:{queue worker id}`  | string                   | a live coordinator's queue worker (TTL 5 s) |
 * | `{p}:coord:experiments`              | zset                     | experiment ids by submission time           |
 * | `{p}:coord:idem:{sha256 of the key}` | string                   | the experiment id of an Idempotency-Key     |
 * | `{p}:coord:unqueued`                 | zset                     | stored, job not yet added (the outbox)      |
 * | `{p}:coord:admission:queue`          | zset                     | experiments waiting for workers, in order   |
 * | `{p}:coord:admission:meta`           | hash                     | id → waiting entry JSON                     |
 * | `{p}:coord:admission:reserved`       | hash                     | id → `{needs, at}` JSON: workers held       |
 * | `{p}:coord:admission:lock`           | string                   | the gate's decision lock (PX, token)        |
 * | `{p}:bull:experiments:…`             | BullMQ                   | the queue (BullMQ builds these itself)      |
 *
 * Records, index and idempotency entries have no TTL: they stay until deleted. An `unqueued` entry (score:
 * submission time) is written with its record and removed once the record's BullMQ job is added.
 */
export const experimentKeys = {
  record: (id: string): string => `${keyPrefix()}:coord:exp:${id}`,
  metrics: (id: string): string => `${keyPrefix()}:coord:exp:${id}:metrics`,
  owner: (id: string): string => `${keyPrefix()}:coord:exp:${id}:owner`,
  index: (): string => `${keyPrefix()}:coord:experiments`,
  /** `keyDigest` is the sha256 (hex) of the client's Idempotency-Key, so any header value makes a safe key. */
  idempotency: (keyDigest: string): string => `${keyPrefix()}:coord:idem:${keyDigest}`,
  unqueued: (): string => `${keyPrefix()}:coord:unqueued`,
};

/**
 * A coordinator's liveness, by the id of its BullMQ worker (the part of a job lock's token before the
 * `:`): a job whose lock names a worker without this key belongs to a dead coordinator and is taken
 * over at once, instead of after the lock lapses and BullMQ's stalled check runs.
 */
export const coordinatorKeys = {
  alive: (queueWorkerId: string): string => `${keyPrefix()}:coord:alive:${queueWorkerId}`,
};

export const admissionKeys = {
  queue: (): string => `${keyPrefix()}:coord:admission:queue`,
  meta: (): string => `${keyPrefix()}:coord:admission:meta`,
  reserved: (): string => `${keyPrefix()}:coord:admission:reserved`,
  lock: (): string => `${keyPrefix()}:coord:admission:lock`,
};

/** BullMQ is given the prefix and the queue name; it builds `{prefix}:{name}:…` itself. */
export const experimentQueueKeys = {
  name: 'experiments',
  prefix: (): string => `${keyPrefix()}:bull`,
} as const;
