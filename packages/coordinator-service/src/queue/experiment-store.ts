import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  keyPrefix,
  runKeys,
  RUN_EVENTS_MAXLEN,
  RUN_EVENT_FIELD,
  type ResolvedSpec,
  type RunEvent,
  type RunStatus,
} from '@lits-ddp/protocol';

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
}

/** Ids double as BullMQ job ids and Redis key parts: no ':' and never all digits. */
export const EXPERIMENT_ID_PATTERN = '^[A-Za-z][A-Za-z0-9._-]{0,127}$';
const ID_RE = new RegExp(EXPERIMENT_ID_PATTERN);
export const isExperimentId = (id: string): boolean => ID_RE.test(id);

export const newExperimentId = (): string =>
  `exp-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(4).toString('hex')}`;

const JSON_FIELDS = ['spec', 'workers', 'latestMetrics', 'testMetrics'] as const;
const NUMBER_FIELDS = ['priority', 'submittedAt', 'startedAt', 'endedAt', 'restarts'] as const;

/** What identifies a submission's content, to tell a retry from a different experiment. */
export const submissionDigest = (spec: ResolvedSpec, priority: number): string =>
  createHash('sha256').update(JSON.stringify({ spec, priority })).digest('hex');

// Creates the record, its index entry, its first event ('queued') and (for a key) the idempotency
// entry atomically, or returns the id an idempotency key already names.
// KEYS: record, index, idem (or ''), events; ARGV: id, score, event JSON, fields…
const CREATE_SCRIPT = `
if KEYS[3] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {0, existing} end
  redis.call('SET', KEYS[3], ARGV[1])
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ARGV[1]} end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ${RUN_EVENTS_MAXLEN}, '*', '${RUN_EVENT_FIELD}', ARGV[3])
return {1, ARGV[1]}`;

/** Experiment records, the submission index and idempotency entries (kept until deleted, never TTL'd). */
export class ExperimentStore {
  constructor(private readonly redis: Redis) {
    // Sent once, then called by its SHA (EVALSHA).
    if (!('litsCreateExperiment' in redis))
      redis.defineCommand('litsCreateExperiment', { numberOfKeys: 4, lua: CREATE_SCRIPT });
  }

  private get base(): string {
    return `${keyPrefix()}:coord`;
  }
  recordKey(id: string): string {
    return `${this.base}:exp:${id}`;
  }
  metricsKey(id: string): string {
    return `${this.base}:exp:${id}:metrics`;
  }
  private indexKey(): string {
    return `${this.base}:experiments`;
  }
  private idemKey(key: string): string {
    return `${this.base}:idem:${createHash('sha256').update(key).digest('hex')}`;
  }

  /**
   * Creates the experiment (and its 'queued' event) unless `idempotencyKey` (or the id itself) was seen before; then returns
   * the existing id with created = false. Idempotency entries outlive the job and the record's TTLs.
   */
  async create(
    rec: Pick<ExperimentRecord, 'id' | 'spec' | 'priority' | 'idempotencyKey'>,
  ): Promise<{ id: string; created: boolean }> {
    const now = Date.now();
    const fields: Record<string, string> = {
      id: rec.id,
      status: 'queued',
      priority: String(rec.priority),
      spec: JSON.stringify(rec.spec),
      digest: submissionDigest(rec.spec, rec.priority),
      submittedAt: String(now),
      restarts: '0',
      done: '0',
      ...(rec.idempotencyKey ? { idempotencyKey: rec.idempotencyKey } : {}),
    };
    const create = (this.redis as unknown as Record<string, (...args: string[]) => Promise<[number, string]>>)
      .litsCreateExperiment as (...args: string[]) => Promise<[number, string]>;
    const [created, id] = (await create.call(
      this.redis,
      this.recordKey(rec.id),
      this.indexKey(),
      rec.idempotencyKey ? this.idemKey(rec.idempotencyKey) : '',
      runKeys.events(rec.id),
      rec.id,
      String(now),
      JSON.stringify({ type: 'status', status: 'queued', restarts: 0 } satisfies RunEvent),
      ...Object.entries(fields).flat(),
    )) as [number, string];
    return { id, created: created === 1 };
  }

  async digestOf(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.recordKey(id), 'digest')) ?? undefined;
  }

  async get(id: string): Promise<ExperimentRecord | undefined> {
    return decodeRecord(await this.redis.hgetall(this.recordKey(id)));
  }

  async update(id: string, patch: Partial<Omit<ExperimentRecord, 'id'>>): Promise<void> {
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      if ((JSON_FIELDS as readonly string[]).includes(k)) fields[k] = JSON.stringify(v);
      else if (k === 'done') fields[k] = v ? '1' : '0';
      else fields[k] = String(v);
    }
    if (Object.keys(fields).length > 0) await this.redis.hset(this.recordKey(id), fields);
  }

  /** Moves the status forward unless the record already reached a terminal one. */
  async setStatus(id: string, status: ExperimentStatus, restarts?: number): Promise<void> {
    const current = (await this.redis.hget(this.recordKey(id), 'status')) as ExperimentStatus | null;
    if (current && TERMINAL_STATUSES.has(current)) return;
    await this.update(id, { status, ...(restarts !== undefined ? { restarts } : {}) });
  }

  /** Records a metric point once (the first value of a (metric, step) pair wins, as in tracking). */
  async addMetricPoint(id: string, key: string, step: number, value: number): Promise<void> {
    await this.redis.hsetnx(this.metricsKey(id), `${key}@${step}`, String(value));
  }

  async metricHistory(id: string): Promise<Record<string, Array<{ step: number; value: number }>>> {
    const out: Record<string, Array<{ step: number; value: number }>> = {};
    for (const [field, value] of Object.entries(await this.redis.hgetall(this.metricsKey(id)))) {
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
    const ids = await this.redis.zrevrange(this.indexKey(), 0, -1);
    let matching = ids;
    if (opts.status) {
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hget(this.recordKey(id), 'status');
      const statuses = ((await pipe.exec()) ?? []).map(([, s]) => s as string | null);
      matching = ids.filter((_, i) => statuses[i] === opts.status);
    }
    const page = matching.slice(opts.offset, opts.offset + opts.limit);
    const pipe = this.redis.pipeline();
    for (const id of page) pipe.hgetall(this.recordKey(id));
    const items = ((await pipe.exec()) ?? [])
      .map(([, h]) => decodeRecord(h as Record<string, string>))
      .filter((r): r is ExperimentRecord => r !== undefined);
    return { total: matching.length, items };
  }

  async countByStatus(): Promise<Record<ExperimentStatus, number>> {
    const ids = await this.redis.zrange(this.indexKey(), 0, -1);
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(this.recordKey(id), 'status');
    const counts = Object.fromEntries(EXPERIMENT_STATUSES.map((s) => [s, 0])) as Record<
      ExperimentStatus,
      number
    >;
    for (const [, s] of (await pipe.exec()) ?? []) {
      if (typeof s === 'string' && s in counts) counts[s as ExperimentStatus]++;
    }
    return counts;
  }
}

function decodeRecord(h: Record<string, string>): ExperimentRecord | undefined {
  if (!h.id || !h.spec) return undefined;
  const out: Record<string, unknown> = { ...h, done: h.done === '1' };
  try {
    for (const k of JSON_FIELDS) if (h[k] !== undefined) out[k] = JSON.parse(h[k]);
  } catch {
    return undefined;
  }
  for (const k of NUMBER_FIELDS) if (h[k] !== undefined) out[k] = Number(h[k]);
  delete out.digest;
  return out as unknown as ExperimentRecord;
}
