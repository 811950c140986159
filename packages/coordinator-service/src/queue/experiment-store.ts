import { hash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Static } from 'typebox';
import {
  checkJson,
  decodeJson,
  EXPERIMENT_ID_PATTERN,
  experimentKeys,
  runKeys,
  RUN_EVENTS_MAXLEN,
  RUN_EVENT_FIELD,
  type ExperimentStatus as ApiExperimentStatus,
  type ResolvedSpec,
  type RunEvent,
  type RunStatus,
} from '@lits-ddp/protocol';
import { RECORD_JSON_FIELDS, StoredRecord } from './stored-schemas.js';

export type ExperimentStatus = 'queued' | RunStatus;
export const EXPERIMENT_STATUSES: readonly ExperimentStatus[] = [
  'queued',
  'preparing',
  'running',
  'restarting',
  'finished',
  'failed',
  'cancelled',
];
/** Compile-time check that the API's statuses (protocol's ExperimentStatus) are these. */
const _apiStatuses = (s: ExperimentStatus): ApiExperimentStatus => s;
const _storeStatuses = (s: ApiExperimentStatus): ExperimentStatus => s;
export const TERMINAL_STATUSES: ReadonlySet<ExperimentStatus> = new Set(['finished', 'failed', 'cancelled']);

/** The service's record of one submitted experiment (a Redis hash; JSON where structured). */
export interface ExperimentRecord {
  id: string;
  status: ExperimentStatus;
  /** 0–100, higher first. */
  priority: number;
  spec: ResolvedSpec;
  submittedAt: number;
  startedAt?: number;
  endedAt?: number;
  /** Everything after the run is over (tracking delivered): SSE followers end here. */
  done: boolean;
  error?: string;
  restarts: number;
  workers?: string[];
  latestMetrics?: Record<string, number>;
  testMetrics?: Record<string, number>;
  modelPath?: string;
  idempotencyKey?: string;
  cancelRequested?: string;
  /** While the supervisor waits for free, live workers (before a generation starts). */
  waitingForWorkers?: WorkerWait;
  /** The run's generations (its `generation` events), oldest first, the last MAX_GENERATIONS only. */
  generations?: GenerationEntry[];
}

/** The newest generations a record keeps: a run that restarts without end must not grow its record so. */
export const MAX_GENERATIONS = 50;

/** One generation of a run: its `generation` event's fields, and when it was assigned (`at`, ms). */
export type GenerationEntry = Omit<Extract<RunEvent, { type: 'generation' }>, 'type'> & { at: number };

/** What a run waiting for workers waits for (the supervisor's `waiting` event), since when (ms). */
export interface WorkerWait {
  needed: number;
  free: number;
  missing: number;
  message: string;
  since: number;
}

/** Fields to write and fields to remove, in one transaction. */
export interface RecordPatch {
  set: Partial<Omit<ExperimentRecord, 'id'>>;
  unset?: ReadonlyArray<keyof ExperimentRecord>;
}

/** Ids double as BullMQ job ids and Redis key parts (protocol's EXPERIMENT_ID_PATTERN, the API's too). */
const ID_RE = new RegExp(EXPERIMENT_ID_PATTERN);
export const isExperimentId = (id: string): boolean => ID_RE.test(id);

/** `yyyymmddhhmmss` (UTC) of the current second, formatted once per second, not once per id. */
let idStamp = { second: NaN, text: '' };
function idSecond(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== idStamp.second)
    idStamp = { second, text: new Date(now).toISOString().replace(/[-:T]/g, '').slice(0, 14) };
  return idStamp.text;
}

// 8 random hex digits: the start of a v4 UUID (all random bits), which node draws from a pool of
// random bytes it refills in bulk; randomBytes(4) made a call into OpenSSL per submission.
export const newExperimentId = (): string => `exp-${idSecond()}-${randomUUID().slice(0, 8)}`;

const JSON_FIELDS = Object.keys(RECORD_JSON_FIELDS) as ReadonlyArray<keyof typeof RECORD_JSON_FIELDS>;
const NUMBER_FIELDS = ['priority', 'submittedAt', 'startedAt', 'endedAt', 'restarts'] as const;
/** Compile-time check that every record the store writes is one StoredRecord accepts. */
const _recordIsStorable = (r: ExperimentRecord): Static<typeof StoredRecord> => r;

// One-shot hashing: no Hash object per call (createHash().update().digest() costs 1.5–2.5× as much).
const sha256 = (text: string): string => hash('sha256', text, 'hex');

/** What identifies a submission's content, to tell a retry from a different experiment. */
export const submissionDigest = (spec: ResolvedSpec, priority: number): string =>
  sha256(JSON.stringify({ spec, priority }));

// Creates each submission's record, index entry, first event ('queued'), outbox entry (QueueFeeder adds its
// job) and (for a key) idempotency entry, or answers the id an idempotency key (or the id itself) already
// names, with that record's digest and status, so a repeated submission needs no more round trips to be told
// from a different one. A repeated one still queued goes back into the outbox: its creator may have died
// before the job was added (adding it twice is harmless). One call creates the submissions of one turn of
// the event loop, in order, atomically each (a repeat later in the batch sees the earlier one).
// KEYS: index, unqueued, then per submission: record, idem (or ''), events
// ARGV: submission time, event JSON, record key prefix, then per submission: id, priority, spec JSON,
//       digest, idempotency key (or '')
const CREATE_SCRIPT = `
local now, event, prefix = ARGV[1], ARGV[2], ARGV[3]
local function existing(id)
  local known = redis.call('HMGET', prefix .. id, 'digest', 'status')
  if known[2] == 'queued' then redis.call('ZADD', KEYS[2], 'NX', now, id) end
  return {0, id, known[1], known[2]}
end
local function create(record, idem, events, id, priority, spec, digest, key)
  if idem ~= '' then
    local known = redis.call('GET', idem)
    if known then return existing(known) end
    redis.call('SET', idem, id)
  end
  if redis.call('EXISTS', record) == 1 then return existing(id) end
  redis.call('HSET', record, 'id', id, 'status', 'queued', 'priority', priority, 'spec', spec,
    'digest', digest, 'submittedAt', now, 'restarts', '0', 'done', '0')
  if key ~= '' then redis.call('HSET', record, 'idempotencyKey', key) end
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('XADD', events, 'MAXLEN', '~', ${RUN_EVENTS_MAXLEN}, '*', '${RUN_EVENT_FIELD}', event)
  return {1, id}
end
local replies = {}
for i = 0, (#KEYS - 2) / 3 - 1 do
  local k, a = 3 + 3 * i, 4 + 5 * i
  replies[i + 1] = create(KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
end
return replies`;
const QUEUED_EVENT = JSON.stringify({ type: 'status', status: 'queued', restarts: 0 } satisfies RunEvent);

/** What `create` returns: the new experiment, or the one the key or id already names. */
export type CreateResult =
  | { id: string; created: true }
  /** `digest` and `status` are undefined when the record is gone (or still being written). */
  | { id: string; created: false; digest?: string; status?: string };
type CreateReply = [1, string] | [0, string, string | null, string | null];

/** The most submissions one create call takes (more wait for the next): bounds how long Redis is busy with one. */
const MAX_CREATE_BATCH = 256;

type NewRecord = Pick<ExperimentRecord, 'id' | 'spec' | 'priority' | 'idempotencyKey'>;
interface PendingCreate {
  rec: NewRecord;
  resolve: (r: CreateResult) => void;
  reject: (err: unknown) => void;
}

/** Experiment records, the submission index and idempotency entries (kept until deleted, never TTL'd). */
export class ExperimentStore {
  private pending: PendingCreate[] = [];

  constructor(private readonly redis: Redis) {
    // Sent once, then called by its SHA (EVALSHA).
    if (!('litsCreateExperiments' in redis))
      redis.defineCommand('litsCreateExperiments', { lua: CREATE_SCRIPT });
  }

  private static idempotencyKey(key: string): string {
    return experimentKeys.idempotency(sha256(key));
  }

  /**
   * Creates the experiment (its 'queued' event, its outbox entry) unless `idempotencyKey` (or the id itself) was
   * seen before; then returns the existing id with created = false and that record's digest and
   * status (one round trip either way). Idempotency entries outlive the job and the record's TTLs.
   * The submissions of one turn of the event loop share the round trip: a burst of POSTs is parsed in one
   * turn, and one script call for all of them cost the event loop less than one each (issue 18, finding 8).
   */
  create(rec: NewRecord): Promise<CreateResult> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ rec, resolve, reject }) === 1) setImmediate(() => this.createPending());
    });
  }

  private createPending(): void {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_CREATE_BATCH);
      this.createBatch(batch).then(
        (results) => batch.forEach((p, i) => p.resolve(results[i] as CreateResult)),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      );
    }
  }

  private async createBatch(batch: readonly PendingCreate[]): Promise<CreateResult[]> {
    const now = String(Date.now());
    const keys: string[] = [experimentKeys.index(), experimentKeys.unqueued()];
    // Record keys are this prefix and the id: the script reads the record a key names by it.
    const prefix = experimentKeys.record('');
    const args: string[] = [now, QUEUED_EVENT, prefix];
    for (const { rec } of batch) {
      const spec = JSON.stringify(rec.spec);
      keys.push(
        prefix + rec.id,
        rec.idempotencyKey ? ExperimentStore.idempotencyKey(rec.idempotencyKey) : '',
        runKeys.events(rec.id),
      );
      args.push(
        rec.id,
        String(rec.priority),
        spec,
        // The same text as submissionDigest's JSON.stringify({ spec, priority }), the spec not encoded twice.
        sha256(`{"spec":${spec},"priority":${JSON.stringify(rec.priority)}}`),
        rec.idempotencyKey ?? '',
      );
    }
    const create = (
      this.redis as unknown as Record<string, (...args: Array<string | number>) => Promise<CreateReply[]>>
    ).litsCreateExperiments as (...args: Array<string | number>) => Promise<CreateReply[]>;
    const replies = await create.call(this.redis, keys.length, ...keys, ...args);
    return replies.map((reply) => {
      if (reply[0] === 1) return { id: reply[1], created: true };
      const [, id, digest, status] = reply;
      return {
        id,
        created: false,
        ...(digest !== null ? { digest } : {}),
        ...(status !== null ? { status } : {}),
      };
    });
  }

  /** The record, or undefined when there is none; a corrupt one throws a JsonDecodeError naming its key. */
  async get(id: string): Promise<ExperimentRecord | undefined> {
    const key = experimentKeys.record(id);
    return decodeRecord(key, await this.redis.hgetall(key));
  }

  async update(id: string, set: RecordPatch['set']): Promise<void> {
    await this.patch(id, { set });
  }

  /** Writes `set` and removes `unset` atomically. */
  async patch(id: string, { set, unset = [] }: RecordPatch): Promise<void> {
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(set)) {
      if (v === undefined) continue;
      if ((JSON_FIELDS as readonly string[]).includes(k)) fields[k] = JSON.stringify(v);
      else if (k === 'done') fields[k] = v ? '1' : '0';
      else fields[k] = String(v);
    }
    const key = experimentKeys.record(id);
    const tx = this.redis.multi();
    if (Object.keys(fields).length > 0) tx.hset(key, fields);
    if (unset.length > 0) tx.hdel(key, ...unset);
    if (Object.keys(fields).length > 0 || unset.length > 0) pipelineResults(await tx.exec());
  }

  /** Records a metric point once (the first value of a (metric, step) pair wins, as in tracking). */
  async addMetricPoint(id: string, key: string, step: number, value: number): Promise<void> {
    await this.redis.hsetnx(experimentKeys.metrics(id), `${key}@${step}`, String(value));
  }

  async metricHistory(id: string): Promise<Record<string, Array<{ step: number; value: number }>>> {
    const out: Record<string, Array<{ step: number; value: number }>> = {};
    for (const [field, value] of Object.entries(await this.redis.hgetall(experimentKeys.metrics(id)))) {
      const at = field.lastIndexOf('@');
      (out[field.slice(0, at)] ??= []).push({ step: Number(field.slice(at + 1)), value: Number(value) });
    }
    for (const list of Object.values(out)) list.sort((a, b) => a.step - b.step);
    return out;
  }

  /** Newest first, optionally one status only; `total` counts every match. */
  async list(opts: {
    status?: ExperimentStatus;
    offset: number;
    limit: number;
  }): Promise<{ total: number; items: ExperimentRecord[] }> {
    const ids = await this.redis.zrevrange(experimentKeys.index(), 0, -1);
    let matching = ids;
    if (opts.status) {
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hget(experimentKeys.record(id), 'status');
      const statuses = pipelineResults(await pipe.exec()).map((s) => s as string | null);
      matching = ids.filter((_, i) => statuses[i] === opts.status);
    }
    const page = matching.slice(opts.offset, opts.offset + opts.limit);
    const pipe = this.redis.pipeline();
    for (const id of page) pipe.hgetall(experimentKeys.record(id));
    // An indexed id without a record is skipped (absent); a corrupt record throws.
    const items = pipelineResults(await pipe.exec())
      .map((h, i) => decodeRecord(experimentKeys.record(page[i] as string), h as Record<string, string>))
      .filter((r): r is ExperimentRecord => r !== undefined);
    return { total: matching.length, items };
  }

  async countByStatus(): Promise<Record<ExperimentStatus, number>> {
    const ids = await this.redis.zrange(experimentKeys.index(), 0, -1);
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(experimentKeys.record(id), 'status');
    const counts = Object.fromEntries(EXPERIMENT_STATUSES.map((s) => [s, 0])) as Record<
      ExperimentStatus,
      number
    >;
    for (const s of pipelineResults(await pipe.exec())) {
      if (typeof s === 'string' && s in counts) counts[s as ExperimentStatus]++;
    }
    return counts;
  }
}

/** The replies of a pipeline; the first failed command's error is thrown, not dropped. */
function pipelineResults(results: Array<[Error | null, unknown]> | null): unknown[] {
  return (results ?? []).map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/**
 * A record hash as an ExperimentRecord: undefined for no hash at all, a JsonDecodeError naming `key`
 * (and the field) for one that does not decode, so a corrupt record is never taken for a missing one.
 */
function decodeRecord(key: string, h: Record<string, string>): ExperimentRecord | undefined {
  if (Object.keys(h).length === 0) return undefined;
  const out: Record<string, unknown> = { ...h, done: h.done === '1' };
  delete out.digest;
  for (const k of JSON_FIELDS) {
    const raw = h[k];
    if (raw !== undefined)
      out[k] = decodeJson(RECORD_JSON_FIELDS[k], raw, `experiment record ${key} field ${k}`);
  }
  for (const k of NUMBER_FIELDS) if (h[k] !== undefined) out[k] = Number(h[k]);
  // Metric values may be null (see stored-schemas): passed on as they always were.
  return checkJson(StoredRecord, out, `experiment record ${key}`) as ExperimentRecord;
}
